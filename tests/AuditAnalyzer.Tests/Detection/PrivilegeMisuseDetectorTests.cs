using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

public sealed class PrivilegeMisuseDetectorTests
{
    private static Org WithAdmin()
    {
        var org = new Org().Peers("p", 20).User("adam", department: "IT", role: "System Administrator").User("bob");
        org.WorkDays("adam", 30, exportRecords: 0);
        org.WorkDays("bob", 30);
        return org;
    }

    [Fact]
    public void Granting_oneself_a_privilege_is_an_alert()
    {
        var org = WithAdmin();
        org.Add("adam", Org.Utc(Org.Weekday(30), 10), AccessAction.AdminChange, "user", target: "adam", privilege: "payroll:read", details: "grant");

        var finding = Assert.Single(org.Score().For("adam").Alerts());

        Assert.Equal(ReasonCodes.SelfGrant, finding.Reasons[0].Code);
        Assert.Contains("'payroll:read'", finding.Reasons[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grant_used_within_hours_for_something_peers_never_do_is_an_escalation()
    {
        var org = WithAdmin();
        var day = Org.Weekday(30);
        var grant = org.Add("adam", Org.Utc(day, 10), AccessAction.AdminChange, "user", target: "bob", privilege: "payroll:export", details: "grant");
        var use = org.Add("bob", Org.Utc(day, 12), AccessAction.Export, "payroll", 80);

        var finding = Assert.Single(org.Score().For("bob").Alerts());

        Assert.Equal(ReasonCodes.Escalation, finding.Reasons[0].Code);
        Assert.Contains("granted by adam and used 2 h later", finding.Reasons[0].Text, StringComparison.Ordinal);
        Assert.Contains(use.EventId, finding.EventIds);
        Assert.DoesNotContain(grant.EventId, finding.EventIds);
    }

    [Theory]
    [InlineData("user.unlock")]
    [InlineData("user.reset_mfa")]
    [InlineData("user.zoneinfo")]
    [InlineData("user.employment")]
    public void An_administrative_change_that_grants_nothing_is_no_escalation_for_its_target(string privilege)
    {
        // Identity sends an unlock or an MFA reset as admin_change with the action as its privilege: the same shape
        // as a grant, but the user can do nothing they could not do before.
        var org = WithAdmin();
        var day = Org.Weekday(30);
        org.Add("adam", Org.Utc(day, 10), AccessAction.AdminChange, "system_user", target: "bob", privilege: privilege);
        org.Add("bob", Org.Utc(day, 12), AccessAction.Export, "payroll", 80);

        Assert.DoesNotContain(org.Score().For("bob"), f => f.HasReason(ReasonCodes.Escalation));
    }

    [Fact]
    public void Changing_ones_own_time_zone_is_no_self_grant()
    {
        var org = WithAdmin();
        org.Add("adam", Org.Utc(Org.Weekday(30), 10), AccessAction.AdminChange, "system_user", target: "adam", privilege: "user.zoneinfo");

        Assert.DoesNotContain(org.Score().For("adam"), f => f.HasReason(ReasonCodes.SelfGrant));
    }

    [Fact]
    public void A_grant_followed_by_ordinary_work_is_not_an_escalation()
    {
        var org = WithAdmin();
        var day = Org.Weekday(30);
        org.Add("adam", Org.Utc(day, 10), AccessAction.AdminChange, "user", target: "bob", privilege: "role:Account Executive", details: "grant");
        org.Add("bob", Org.Utc(day, 12), AccessAction.List, "contact", 20);

        Assert.DoesNotContain(org.Score().For("bob"), f => f.HasReason(ReasonCodes.Escalation));
    }

    [Fact]
    public void Any_activity_after_the_termination_date_is_critical()
    {
        var org = new Org().User("tess", terminated: Org.Weekday(29));
        org.WorkDays("tess", 29);
        org.Add("tess", Org.Utc(Org.Weekday(31), 10), AccessAction.Login);
        org.Add("tess", Org.Utc(Org.Weekday(31), 10.2), AccessAction.Read, "contact");

        var finding = Assert.Single(org.Score().For("tess").Alerts());

        Assert.Equal(Severity.Critical, finding.Severity);
        Assert.Equal(ReasonCodes.AfterTermination, finding.Reasons[0].Code);
    }

    [Fact]
    public void A_dormant_account_active_again_is_an_alert_naming_the_gap()
    {
        var org = new Org().User("dan");
        org.WorkDays("dan", 10);
        var back = Org.Monday.AddDays(80);
        org.Add("dan", Org.Utc(back, 10), AccessAction.Login);
        org.Add("dan", Org.Utc(back, 10.1), AccessAction.List, "contact", 200);

        var finding = Assert.Single(org.Score().For("dan").Alerts());

        Assert.Equal(ReasonCodes.Dormant, finding.Reasons[0].Code);
        Assert.Contains("after 69 days without any activity", finding.Reasons[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Decrypting_far_more_sensitive_values_than_usual_is_a_mass_decrypt()
    {
        var org = new Org().User("sue", department: "Support", role: "Support Agent");
        org.WorkDays("sue", 30);
        for (var d = 0; d < 30; d++)
        {
            for (var i = 0; i < 5; i++)
            {
                org.Add("sue", Org.Utc(Org.Weekday(d), 10 + i), AccessAction.Decrypt, "contact", fields: 1);
            }
        }

        for (var i = 0; i < 400; i++)
        {
            org.Add("sue", Org.Utc(Org.Weekday(30), 10 + (i / 100.0)), AccessAction.Decrypt, "contact", fields: 3);
        }

        var finding = Assert.Single(org.Score().For("sue").Alerts());

        Assert.Equal(ReasonCodes.MassDecrypt, finding.Reasons[0].Code);
        Assert.Contains("typical 5, actual 1,200", finding.Reasons[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_first_access_to_an_entity_no_peer_touches_is_flagged_but_one_most_peers_use_is_not()
    {
        var org = new Org().Peers("p", 20).User("alice");
        org.WorkDays("alice", 30);
        for (var i = 0; i < 15; i++)
        {
            org.Add($"p{i:00}", Org.Utc(Org.Weekday(5), 12), AccessAction.Read, "account");
        }

        org.Add("alice", Org.Utc(Org.Weekday(30), 11), AccessAction.Read, "account");
        org.Add("alice", Org.Utc(Org.Weekday(30), 12), AccessAction.List, "employee", 40);

        var finding = Assert.Single(org.Score().For("alice").Alerts());

        Assert.Equal(ReasonCodes.FirstSeenRare, finding.Reasons[0].Code);
        Assert.Contains("first list of employee", finding.Reasons[0].Text, StringComparison.Ordinal);
        Assert.DoesNotContain(finding.Reasons, r => r.Text.Contains("of account", StringComparison.Ordinal));
    }

    [Fact]
    public void An_entity_a_user_touched_in_an_earlier_run_is_not_first_seen_again_when_a_later_run_continues()
    {
        var org = new Org().Peers("p", 20).User("alice");
        org.WorkDays("alice", 30);
        org.Add("alice", Org.Utc(Org.Weekday(12), 12), AccessAction.List, "employee", 40);
        org.Add("alice", Org.Utc(Org.Weekday(30), 12), AccessAction.List, "employee", 40);
        var split = Org.Utc(Org.Weekday(20), 0);

        var first = org.Score(out var earlier, before: split);
        var later = org.Score(out _, baselines: earlier.Baselines, from: split);

        Assert.Contains(first.For("alice"), f => f.HasReason(ReasonCodes.FirstSeenRare));
        Assert.DoesNotContain(later.For("alice"), f => f.HasReason(ReasonCodes.FirstSeenRare));
    }

    [Fact]
    public void An_administrator_reading_business_data_far_beyond_their_norm_is_flagged()
    {
        var org = WithAdmin();
        org.Add("adam", Org.Utc(Org.Weekday(30), 11), AccessAction.List, "contact", 5_000);

        var finding = Assert.Single(org.Score().For("adam").Alerts());

        Assert.Equal(ReasonCodes.AdminDataAccess, finding.Reasons[0].Code);
        Assert.Contains("actual 5,0", finding.Reasons[0].Text, StringComparison.Ordinal);
    }
}
