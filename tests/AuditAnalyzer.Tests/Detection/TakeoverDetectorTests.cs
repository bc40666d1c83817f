using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

/// <summary>
/// Account takeover: one account used from two places nobody could travel between in the time between the events, or from a
/// new place far away the night after work while its owner sleeps.
/// </summary>
public sealed class TakeoverDetectorTests
{
    /// <summary>gina works 30 days from Britain (UTC), then on day 30 signs in from Britain at 09:00.</summary>
    private static Org Gina(Action<Org, DateOnly> then, string? vpnCountry = null)
    {
        var org = new Org().Peers("p", 12).User("gina");
        org.WorkDays("gina", 30, country: "GB");
        if (vpnCountry is not null)
        {
            for (var d = 0; d < 10; d++)
            {
                org.Add("gina", Org.Utc(Org.Weekday(d), 12.5), AccessAction.Search, "contact", country: vpnCountry); // the corporate VPN's exit
            }
        }

        var day = Org.Weekday(30);
        org.Add("gina", Org.Utc(day, 9), AccessAction.Login, country: "GB");
        then(org, day);
        return org;
    }

    [Fact]
    public void A_sign_in_from_japan_an_hour_after_work_in_britain_is_an_alert_naming_both_places_and_the_speed()
    {
        var findings = Gina((org, day) =>
        {
            org.Add("gina", Org.Utc(day, 10), AccessAction.Login, country: "JP");
            org.Add("gina", Org.Utc(day, 10.2), AccessAction.Export, "contact", 300, country: "JP");
        }).Score().For("gina").Alerts().ToList();

        var reason = Assert.Single(findings).Reasons.Single(r => r.Code == ReasonCodes.ImpossibleTravel);
        Assert.Contains("from JP 1 h after activity from GB", reason.Text, StringComparison.Ordinal);
        Assert.True(reason.Actual > 9000, $"speed {reason.Actual}"); // about 9,500 km in an hour
        Assert.Equal(1000, reason.Typical);
    }

    [Fact]
    public void Flying_to_japan_and_working_there_the_next_day_is_no_finding()
    {
        var findings = Gina((org, day) => org.Add("gina", Org.Utc(day.AddDays(1), 23.5), AccessAction.Login, country: "JP")).Score().For("gina");

        Assert.DoesNotContain(findings, f => f.HasReason(ReasonCodes.ImpossibleTravel));
    }

    [Fact]
    public void A_refused_sign_in_from_japan_is_no_impossible_travel()
    {
        // Password guessing from abroad is what lockout is for; only what someone actually did in the account counts.
        var findings = Gina((org, day) =>
        {
            var guess = org.Add("gina", Org.Utc(day, 10), AccessAction.LoginFailed, country: "JP");
            org.Add("gina", Org.Utc(day, 11), AccessAction.Search, "contact", country: "GB");
        }).Score().For("gina");

        Assert.DoesNotContain(findings, f => f.HasReason(ReasonCodes.ImpossibleTravel));
    }

    [Fact]
    public void A_jump_to_a_neighbouring_country_is_no_finding()
    {
        var findings = Gina((org, day) => org.Add("gina", Org.Utc(day, 9.5), AccessAction.Login, country: "FR")).Score().For("gina");

        Assert.DoesNotContain(findings, f => f.HasReason(ReasonCodes.ImpossibleTravel));
    }

    [Fact]
    public void Switching_between_home_and_a_vpn_exit_used_for_weeks_is_no_finding_but_a_new_country_is()
    {
        var vpn = Gina((org, day) => org.Add("gina", Org.Utc(day, 9.5), AccessAction.Search, "contact", country: "US"), vpnCountry: "US").Score().For("gina");
        var stranger = Gina((org, day) => org.Add("gina", Org.Utc(day, 9.5), AccessAction.Search, "contact", country: "BR"), vpnCountry: "US").Score().For("gina");

        Assert.DoesNotContain(vpn, f => f.HasReason(ReasonCodes.ImpossibleTravel));
        Assert.Contains(stranger, f => f.HasReason(ReasonCodes.ImpossibleTravel));
    }

    [Fact]
    public void Searches_and_an_export_from_a_country_never_used_the_night_after_work_are_an_alert_and_high_once_the_owner_is_back()
    {
        // GB to NG is about 5,100 km: 9.5 h after work and 6.7 h before the morning is no impossible travel; the night is.
        var findings = Gina((org, day) =>
        {
            org.Add("gina", Org.Utc(day, 16.5), AccessAction.List, "contact", 20, country: "GB");
            var night = day.AddDays(1);
            org.Add("gina", Org.Utc(night, 2), AccessAction.Login, country: "NG");
            org.Add("gina", Org.Utc(night, 2.1), AccessAction.Search, "contact", 30, country: "NG");
            org.Add("gina", Org.Utc(night, 2.3), AccessAction.Export, "contact", 800, country: "NG");
            org.Add("gina", Org.Utc(night, 9), AccessAction.Login, country: "GB");
        }).Score().For("gina").Alerts().ToList();

        var finding = Assert.Single(findings);
        Assert.DoesNotContain(finding.Reasons, r => r.Code == ReasonCodes.ImpossibleTravel);
        var place = finding.Reasons.Single(r => r.Code == ReasonCodes.NewPlace);
        Assert.Contains("from NG, a country this account never used, 9.5 h after activity from GB", place.Text, StringComparison.Ordinal);
        Assert.Contains("830 records", place.Text, StringComparison.Ordinal);
        var back = finding.Reasons.Single(r => r.Code == ReasonCodes.RoundTrip);
        Assert.Contains("login from GB 6.7 h after", back.Text, StringComparison.Ordinal);
        Assert.True(back.Score >= 75, $"round trip scored {back.Score}");
        Assert.True(finding.Severity >= Severity.High, $"severity {finding.Severity}");
    }

    [Fact]
    public void A_traveller_who_arrives_after_a_day_in_the_air_and_works_local_hours_is_no_takeover()
    {
        var findings = Gina((org, day) =>
        {
            org.Add("gina", Org.Utc(day, 16.5), AccessAction.List, "contact", 20, country: "GB");
            var there = day.AddDays(2); // the day in between in the air
            org.Add("gina", Org.Utc(there, 8), AccessAction.Login, country: "NG"); // 09:00 in Lagos
            org.Add("gina", Org.Utc(there, 8.5), AccessAction.Search, "contact", 30, country: "NG");
            org.Add("gina", Org.Utc(there, 9), AccessAction.Export, "contact", 300, country: "NG");
        }).Score().For("gina");

        Assert.DoesNotContain(findings, f => f.HasReason(ReasonCodes.NewPlace) || f.HasReason(ReasonCodes.RoundTrip));
    }

    [Fact]
    public void A_night_sign_in_from_a_new_country_that_touches_no_data_is_no_takeover()
    {
        var findings = Gina((org, day) =>
        {
            org.Add("gina", Org.Utc(day, 16.5), AccessAction.List, "contact", 20, country: "GB");
            org.Add("gina", Org.Utc(day.AddDays(1), 2), AccessAction.Login, country: "NG");
            org.Add("gina", Org.Utc(day.AddDays(1), 9), AccessAction.Login, country: "GB");
        }).Score().For("gina");

        Assert.DoesNotContain(findings, f => f.HasReason(ReasonCodes.NewPlace) || f.HasReason(ReasonCodes.RoundTrip));
    }

    [Fact]
    public void Distances_between_country_centres_are_about_right()
    {
        Assert.InRange(CountryPlaces.DistanceKm("GB", "JP")!.Value, 9000, 10000);
        Assert.InRange(CountryPlaces.DistanceKm("GB", "FR")!.Value, 600, 800); // under min_km: neighbours are never compared
        Assert.Null(CountryPlaces.DistanceKm("GB", "XX"));
    }
}
