using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

public sealed class OddHoursDetectorTests
{
    private static void NightSession(Org org, string user, DateOnly day, string? country = null)
    {
        org.Add(user, Org.Utc(day, 2), AccessAction.Login, country: country);
        for (var i = 0; i < 5; i++)
        {
            org.Add(user, Org.Utc(day, 2.1 + (i * 0.1)), AccessAction.List, "contact", 50, country: country);
        }
    }

    [Fact]
    public void Reading_data_at_night_for_a_day_worker_is_an_alert_explained_by_the_hour_and_the_data()
    {
        var org = new Org().Peers("p", 20).User("alice");
        org.WorkDays("alice", 30);
        NightSession(org, "alice", Org.Weekday(30));

        var finding = Assert.Single(org.Score().For("alice").Alerts());

        Assert.Equal(ReasonCodes.RareHour, finding.Reasons[0].Code);
        Assert.Contains("02:00-02:59 local", finding.Reasons[0].Text, StringComparison.Ordinal);
        Assert.Contains("250 records touched at odd hours", finding.Reasons[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public void An_evening_a_whole_team_worked_late_is_no_alert_but_one_person_alone_late_is()
    {
        // A product incident keeps the team at work until 23:00: a spike shared by the peer group the same day is the group's
        // day, not one person's anomaly.
        static Org Evening(int latePeers)
        {
            var org = new Org().Peers("p", 12, days: 31).User("alice");
            org.WorkDays("alice", 31);
            var day = Org.Weekday(30);
            foreach (var who in Enumerable.Range(0, latePeers).Select(i => $"p{i:00}").Append("alice"))
            {
                for (var i = 0; i < 5; i++)
                {
                    org.Add(who, Org.Utc(day, 22 + (i * 0.3)), AccessAction.List, "contact", 50);
                }
            }

            return org;
        }

        Assert.Contains(Evening(latePeers: 0).Score().For("alice").Alerts(), f => f.HasReason(ReasonCodes.RareHour));
        var together = Evening(latePeers: 6).Score().For("alice").ToList();
        Assert.DoesNotContain(together.Alerts(), f => f.HasReason(ReasonCodes.RareHour));
        Assert.Contains(together, f => f.Reasons.Any(r => r.Code == ReasonCodes.RareHour && r.Text.Contains("peers worked at hours rare for them the same day", StringComparison.Ordinal)));
    }

    [Fact]
    public void The_same_night_is_normal_for_a_night_shift_worker()
    {
        var org = new Org().Peers("p", 20).User("nora", department: "Support", role: "Support Agent");
        org.WorkDays("nora", 30, startHour: 22, endHour: 6);
        NightSession(org, "nora", Org.Weekday(30).AddDays(1));

        Assert.DoesNotContain(org.Score().For("nora"), f => f.HasReason(ReasonCodes.RareHour));
    }

    [Fact]
    public void A_sign_in_at_night_with_no_data_touched_is_at_most_low()
    {
        var org = new Org().Peers("p", 20).User("alice");
        org.WorkDays("alice", 30);
        org.Add("alice", Org.Utc(Org.Weekday(30), 3), AccessAction.Login);
        org.Add("alice", Org.Utc(Org.Weekday(30), 3.2), AccessAction.Logout);

        var finding = Assert.Single(org.Score().For("alice"));

        Assert.Equal(ReasonCodes.RareHour, finding.Reasons[0].Code);
        Assert.Equal(Severity.Low, finding.Severity);
        Assert.True(finding.Score <= 30);
    }

    [Fact]
    public void A_traveller_working_normal_hours_where_they_are_is_not_odd_but_the_same_hours_at_home_are()
    {
        static Org Trip(string? country)
        {
            var org = new Org().User("hans", zone: "Europe/Berlin");
            org.WorkDays("hans", 30, country: "DE");
            var newYork = TimeZoneInfo.FindSystemTimeZoneById("America/New_York");
            var day = Org.Weekday(30);
            org.Add("hans", Org.Local(newYork, day, 9, 0), AccessAction.Login, country: country);
            for (var h = 10; h < 18; h++)
            {
                org.Add("hans", Org.Local(newYork, day, h, 0), AccessAction.List, "contact", 40, country: country);
            }

            return org;
        }

        Assert.DoesNotContain(Trip("US").Score().For("hans"), f => f.HasReason(ReasonCodes.RareHour));
        Assert.Contains(Trip(null).Score().For("hans").Alerts(), f => f.HasReason(ReasonCodes.RareHour));
    }

    [Fact]
    public void On_the_first_day_of_data_ordinary_hours_of_a_new_user_are_not_odd_once_peers_days_close()
    {
        // Peers in Tokyo close their Monday while a Los Angeles user is still working theirs: the
        // learning-mode profile must follow the peers' closed days, not stay as it was at the user's first event.
        var org = new Org();
        for (var i = 0; i < 60; i++)
        {
            org.User($"t{i:00}", zone: "Asia/Tokyo").WorkDays($"t{i:00}", 2);
        }

        org.User("lena", zone: "America/Los_Angeles").WorkDays("lena", 1, endHour: 19);

        Assert.DoesNotContain(org.Score().For("lena"), f => f.HasReason(ReasonCodes.RareHour));
    }

    [Fact]
    public void Odd_hours_and_a_bulk_export_on_one_user_are_one_stronger_correlated_finding()
    {
        var org = new Org().Peers("p", 20).User("alice");
        org.WorkDays("alice", 30);
        NightSession(org, "alice", Org.Weekday(30));
        org.Add("alice", Org.Utc(Org.Weekday(30), 2.8), AccessAction.Export, "contact", 4_000);

        var finding = Assert.Single(org.Score().For("alice"));

        Assert.True(finding.Correlated);
        Assert.Contains(DetectorNames.OddHours, finding.Detectors);
        Assert.Contains(DetectorNames.BulkExport, finding.Detectors);
        Assert.True(finding.Score > finding.Reasons.Max(r => r.Score));
    }
}
