using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

/// <summary>
/// Non-human identities: an integration's service account has a baseline of its own (its hour, its entities, its volume),
/// so its nightly sync of thousands of records is normal for it, and the same credentials used outside that pattern are not.
/// </summary>
public sealed class IntegrationAccountTests
{
    /// <summary>svc syncs accounts every night of six weeks at 02:00 UTC; then, perhaps, someone uses its secret at noon.</summary>
    private static Org Sync(Action<Org, DateOnly>? then = null)
    {
        var org = new Org().Peers("p", 12).User("svc", department: "Integration", role: "Integration Service");
        for (var d = 0; d < 42; d++)
        {
            var night = Org.Monday.AddDays(d);
            org.Add("svc", Org.Utc(night, 2), AccessAction.Login);
            for (var page = 0; page < 5; page++)
            {
                org.Add("svc", Org.Utc(night, 2.05 + (page * 0.1)), AccessAction.ApiQuery, "account", 2500 + (d % 7 * 100));
            }
        }

        then?.Invoke(org, Org.Monday.AddDays(42));
        return org;
    }

    [Fact]
    public void Its_nightly_sync_of_twelve_thousand_records_is_normal_for_it()
    {
        Assert.Empty(Sync().Score().For("svc").Alerts());
    }

    [Fact]
    public void Its_credentials_exporting_contacts_at_noon_are_an_alert_naming_the_hour_and_its_own_history()
    {
        var finding = Assert.Single(Sync((org, day) =>
        {
            org.Add("svc", Org.Utc(day, 12), AccessAction.Login);
            org.Add("svc", Org.Utc(day, 12.1), AccessAction.ApiQuery, "contact", 3000);
            org.Add("svc", Org.Utc(day, 12.3), AccessAction.Export, "contact", 4000);
        }).Score().For("svc").Alerts());

        Assert.Contains(finding.Reasons, r => r.Code == ReasonCodes.RareHour && r.Text.Contains("12:00-12:59 local", StringComparison.Ordinal));
        Assert.Contains(finding.Reasons, r => r.Code == ReasonCodes.OwnHistory && r.Text.Contains("actual 4,000", StringComparison.Ordinal));
    }
}
