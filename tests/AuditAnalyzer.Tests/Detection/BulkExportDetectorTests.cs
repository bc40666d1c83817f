using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

public sealed class BulkExportDetectorTests
{
    [Fact]
    public void An_export_far_above_own_history_and_peers_is_critical_and_explained_as_typical_vs_actual()
    {
        var org = new Org().Peers("p", 20).User("alice");
        org.WorkDays("alice", 30);
        var day = Org.Weekday(30);
        var export = org.Add("alice", Org.Utc(day, 11), AccessAction.Export, "contact", 20_000);

        var finding = Assert.Single(org.Score().For("alice").Alerts());

        Assert.Equal(Severity.Critical, finding.Severity);
        Assert.Equal(DetectorNames.BulkExport, finding.Detector);
        var top = finding.Reasons[0];
        Assert.Equal(ReasonCodes.OwnHistory, top.Code);
        Assert.Contains("actual 20,000", top.Text, StringComparison.Ordinal);
        Assert.InRange(top.Typical!.Value, 25, 60);
        Assert.True(finding.HasReason(ReasonCodes.PeerHistory));
        Assert.Contains(export.EventId, finding.EventIds);
        Assert.False(finding.Learning);
    }

    [Fact]
    public void A_campaign_export_the_size_of_earlier_ones_is_not_flagged_but_the_first_ever_is()
    {
        static Org Marketer(bool campaigns)
        {
            var org = new Org().User("mia", department: "Marketing", role: "Marketing Specialist");
            org.WorkDays("mia", 30);
            for (var week = 0; campaigns && week < 6; week++)
            {
                org.Add("mia", Org.Utc(Org.Weekday(week * 5), 15), AccessAction.Export, "lead", 15_000 + (week * 500));
            }

            org.Add("mia", Org.Utc(Org.Weekday(30), 15), AccessAction.Export, "lead", 16_000);
            return org;
        }

        Assert.Empty(Marketer(campaigns: true).Score().For("mia").Alerts());
        Assert.Contains(Marketer(campaigns: false).Score().For("mia").Alerts(), f => f.HasReason(ReasonCodes.OwnHistory));
    }

    [Fact]
    public void A_hard_limit_on_a_sensitive_entity_applies_even_in_learning_mode_but_not_to_exempt_departments()
    {
        var org = new Org().User("nia").User("max", department: "Marketing", role: "Marketing Specialist");
        org.Add("nia", Org.Utc(Org.Weekday(0), 10), AccessAction.Login);
        org.Add("nia", Org.Utc(Org.Weekday(0), 11), AccessAction.Export, "lead", 3_000);
        org.Add("max", Org.Utc(Org.Weekday(0), 11), AccessAction.Export, "lead", 3_000);

        var findings = org.Score();

        var nia = Assert.Single(findings.For("nia").Alerts());
        Assert.Equal(ReasonCodes.SensitiveLimit, nia.Reasons[0].Code);
        Assert.Contains("lead records in one export: policy limit 2,000, actual 3,000", nia.Reasons[0].Text, StringComparison.Ordinal);
        Assert.DoesNotContain(findings.For("max"), f => f.HasReason(ReasonCodes.SensitiveLimit));
    }

    [Fact]
    public void A_new_user_is_compared_with_peers_and_the_finding_says_it_is_in_learning_mode()
    {
        var org = new Org().Peers("p", 20).User("nia");
        org.WorkDays("nia", 32, exportRecords: 0, skipFirst: 30);
        org.Add("nia", Org.Utc(Org.Weekday(31), 13), AccessAction.Export, "contact", 3_000);

        var finding = Assert.Single(org.Score().For("nia").Alerts());

        Assert.True(finding.Learning);
        Assert.Equal(ReasonCodes.PeerHistory, finding.Reasons[0].Code);
        Assert.Contains("learning mode", finding.Reasons[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Slow_exfiltration_under_the_daily_threshold_is_found_by_the_rolling_30_day_total()
    {
        var org = new Org().Peers("p", 20, days: 65).User("alice");
        org.WorkDays("alice", 65);
        for (var d = 50; d < 65; d++)
        {
            org.Add("alice", Org.Utc(Org.Weekday(d), 14), AccessAction.Export, "contact", 300);
        }

        var alerts = org.Score().For("alice").Alerts().ToList();

        Assert.NotEmpty(alerts);
        Assert.All(alerts, f => Assert.False(f.HasReason(ReasonCodes.OwnHistory)));
        Assert.Contains(alerts, f => f.Reasons[0].Code is ReasonCodes.Cumulative30 or ReasonCodes.Cumulative7);
        Assert.All(alerts, f => Assert.True(f.WindowStart >= Org.Utc(Org.Weekday(50), 0)));
    }

    [Fact]
    public void A_day_on_which_much_of_the_group_exports_unusually_much_is_damped_and_says_why()
    {
        var org = new Org().Peers("f", 10, department: "Finance", role: "Financial Analyst", exportRecords: 100, exportEntity: "invoice");
        var closing = Org.Weekday(30);
        for (var i = 0; i < 8; i++)
        {
            org.Add($"f{i:00}", Org.Utc(closing, 10 + (i * 0.25)), AccessAction.Export, "invoice", 9_000 + (i * 300));
        }

        var findings = org.Score().Where(f => f.WindowStart >= Org.Utc(closing, 0)).ToList();

        Assert.NotEmpty(findings);
        Assert.Empty(findings.Alerts());
        Assert.All(findings, f => Assert.Contains("group-wide", f.Reasons[0].Text, StringComparison.Ordinal));
    }
}
