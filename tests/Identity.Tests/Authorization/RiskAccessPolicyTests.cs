using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Risk;
using CrmSecurity.Identity.Contracts;

namespace CrmSecurity.Identity.Tests.Authorization;

/// <summary>The risk-access policy file: the shipped levels, what they do to a decision, and bad files named precisely.</summary>
public sealed class RiskAccessPolicyTests
{
    private sealed class OneRisk(UserRisk? risk) : IUserRisks
    {
        public UserRisk? Find(string userId) => userId == "u1" ? risk : null;
    }

    private static readonly CheckResponse Allowed = new() { Allowed = true, Basis = "privilege", Reason = "role Sales Manager grants export at business unit depth" };

    private static UserRisk Finding(string severity) => new("f-42", severity, "bulk_export", "48,000 contacts exported", new DateTimeOffset(2026, 12, 6, 11, 4, 0, TimeSpan.Zero));

    [Fact]
    public void The_shipped_policy_denies_exports_at_high_and_obliges_a_step_up_at_critical()
    {
        var errors = new List<string>();
        var levels = RiskAccess.Read(null, errors);

        Assert.Empty(errors);
        Assert.Equal([CrmAction.Export], levels["high"].Deny);
        Assert.True(levels["high"].MaskSecuredFields);
        Assert.Null(levels["high"].StepUp);
        Assert.Equal("mfa", levels["critical"].StepUp);
        Assert.False(levels.ContainsKey("medium"));
    }

    [Fact]
    public void A_denied_action_names_the_finding_and_what_the_model_alone_said_and_other_actions_carry_the_step_up()
    {
        var levels = RiskAccess.Read(null, []);
        var risk = new RiskAccess(levels, new OneRisk(Finding("critical")), enabled: true);

        var export = risk.Apply(Allowed, "u1", CrmAction.Export);
        var read = risk.Apply(Allowed, "u1", CrmAction.Read);
        var someoneElse = risk.Apply(Allowed, "u2", CrmAction.Export);

        Assert.False(export.Allowed);
        Assert.Equal("risk", export.Basis);
        Assert.StartsWith("export denied: open critical finding f-42 (bulk_export detected 2026-12-06 11:04 UTC: 48,000 contacts exported)", export.Reason, StringComparison.Ordinal);
        Assert.Contains("role Sales Manager grants export", export.Reason, StringComparison.Ordinal);
        Assert.True(read.Allowed);
        var obligation = Assert.Single(read.Obligations!);
        Assert.Equal(("step_up", "mfa"), (obligation.Type, obligation.Value));
        Assert.Same(Allowed, someoneElse);
    }

    [Fact]
    public void Switched_off_or_a_refusal_already_nothing_changes()
    {
        var levels = RiskAccess.Read(null, []);
        var off = new RiskAccess(levels, new OneRisk(Finding("critical")), enabled: false);
        var on = new RiskAccess(levels, new OneRisk(Finding("high")), enabled: true);
        var refused = Allowed with { Allowed = false, Basis = "no_privilege", Reason = "no role grants delete" };

        Assert.Same(Allowed, off.Apply(Allowed, "u1", CrmAction.Export));
        Assert.Same(refused, on.Apply(refused, "u1", CrmAction.Delete));
        Assert.Null(on.Apply(Allowed, "u1", CrmAction.Read).Obligations); // high: no step-up
        Assert.Equal(FieldAccess.Masked, RiskAccess.Field(FieldAccess.Read, Sensitivity.Sensitive, on.For("u1")!.Value.Effect));
        Assert.Equal(FieldAccess.Read, RiskAccess.Field(FieldAccess.Read, Sensitivity.Internal, on.For("u1")!.Value.Effect));
    }

    [Fact]
    public void Every_problem_of_a_bad_policy_file_is_named_with_the_file_level_and_setting()
    {
        var file = Path.Combine(Path.GetTempPath(), $"risk-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, """
            {
              // a comment is fine
              "severe": {},
              "high": { "deny": ["export", "teleport"], "mask_secured_fields": "yes", "step_up": "sms", "notify": true }
            }
            """);
        try
        {
            var errors = new List<string>();
            RiskAccess.Read(file, errors);

            Assert.Equal(
            [
                $"{file}: unknown level 'severe' (use medium, high, critical)",
                $"{file}: high.deny: unknown action \"teleport\" (use {CrmNames.ActionList})",
                $"{file}: high.mask_secured_fields: bad value \"yes\" (deny: a list of actions; mask_secured_fields: true or false; step_up: \"mfa\")",
                $"{file}: high.step_up: bad value \"sms\" (deny: a list of actions; mask_secured_fields: true or false; step_up: \"mfa\")",
                $"{file}: high.notify: unknown setting (use deny, mask_secured_fields, step_up)",
            ], errors);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
