using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

/// <summary>Impossible travel: one account used from two places nobody could travel between in the time between the events.</summary>
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
    public void Distances_between_country_centres_are_about_right()
    {
        Assert.InRange(CountryPlaces.DistanceKm("GB", "JP")!.Value, 9000, 10000);
        Assert.InRange(CountryPlaces.DistanceKm("GB", "FR")!.Value, 600, 800); // under min_km: neighbours are never compared
        Assert.Null(CountryPlaces.DistanceKm("GB", "XX"));
    }
}
