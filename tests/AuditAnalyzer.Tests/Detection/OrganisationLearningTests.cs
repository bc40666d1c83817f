using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

/// <summary>
/// Cold start: on a new installation every user and every peer group is new, so everything is "first seen" or "rare".
/// Until the organisation has <c>organisation_learning_days</c> of its own history only reasons that need no history speak.
/// </summary>
public sealed class OrganisationLearningTests
{
    /// <summary>A new installation's third working day: 20 peers and bob with two days behind them, adam the administrator.</summary>
    private static Org ThirdDay(Action<Org, DateOnly> today)
    {
        var org = new Org().Peers("p", 20, days: 2).User("adam", department: "IT", role: "System Administrator").User("bob", terminated: Org.Weekday(1));
        org.WorkDays("adam", 2, exportRecords: 0);
        org.WorkDays("bob", 2);
        today(org, Org.Weekday(2));
        return org;
    }

    /// <summary>The day's events that judge against history: a grant used at once for what nobody did, and a 3 a.m. session.</summary>
    private static void RareThings(Org org, DateOnly day)
    {
        org.Add("adam", Org.Utc(day, 10), AccessAction.AdminChange, "user", target: "p01", privilege: "payroll:export", details: "grant");
        org.Add("p01", Org.Utc(day, 12), AccessAction.Export, "payroll", 80);
        org.Add("p02", Org.Utc(day, 3), AccessAction.Login);
        org.Add("p02", Org.Utc(day, 3.1), AccessAction.Export, "contact", 900);
    }

    [Fact]
    public void In_the_first_days_of_an_installation_first_seen_and_rare_things_raise_nothing()
    {
        var findings = ThirdDay(RareThings).Score(out var scorer);

        Assert.DoesNotContain(findings.Alerts(), f => f.UserId is "p01" or "p02");
        Assert.True(scorer.SignalsHeldBack > 0, "the gate held nothing back, so the test proves nothing");
        Assert.Equal(Org.Monday.AddDays(14), scorer.OrganisationLearningEnds);
    }

    [Fact]
    public void The_same_events_speak_with_the_gate_off()
    {
        // The control: without the gate the day's grant-and-use is an escalation, so the silence above is the gate's doing.
        var org = ThirdDay(RareThings);
        org.Policy = org.Policy with { OrganisationLearningDays = 0 };

        var findings = org.Score(out var scorer);

        Assert.Contains(findings.For("p01").Alerts(), f => f.HasReason(ReasonCodes.Escalation));
        Assert.Equal(0, scorer.SignalsHeldBack);
        Assert.Null(scorer.OrganisationLearningEnds);
    }

    [Fact]
    public void Reasons_that_need_no_history_are_raised_from_the_first_day()
    {
        var findings = ThirdDay((org, day) =>
        {
            org.Add("adam", Org.Utc(day, 10), AccessAction.AdminChange, "user", target: "adam", privilege: "payroll:read", details: "grant");
            org.Add("bob", Org.Utc(day, 11), AccessAction.Export, "contact", 50); // terminated yesterday
        }).Score();

        Assert.Contains(findings.For("adam").Alerts(), f => f.HasReason(ReasonCodes.SelfGrant));
        Assert.Contains(findings.For("bob").Alerts(), f => f.HasReason(ReasonCodes.AfterTermination));
    }

    [Fact]
    public void An_installation_with_history_behind_it_is_not_learning_again()
    {
        // Baselines of an installation that started 60 days ago (as loaded from the database): its day 3 here is no cold start.
        var org = ThirdDay(RareThings);
        var baselines = new BaselineSet(org.Policy.HistoryDays) { OrganisationFirstDay = Org.Monday.DayNumber - 60 };

        var findings = org.Score(out var scorer, baselines);

        Assert.Contains(findings.For("p01").Alerts(), f => f.HasReason(ReasonCodes.Escalation));
        Assert.Equal(0, scorer.SignalsHeldBack);
    }

    [Fact]
    public void Only_reasons_judged_against_a_fact_are_exempt()
    {
        Assert.Equal(
            new[] { ReasonCodes.AfterTermination, ReasonCodes.SelfGrant, ReasonCodes.SensitiveLimit }.Order(),
            ReasonCodes.WithoutHistory.Order());
        Assert.All(ReasonCodes.WithoutHistory, code => Assert.Contains(code, ReasonCodes.All));
    }
}
