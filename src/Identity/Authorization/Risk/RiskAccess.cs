using System.Globalization;
using System.Reflection;
using System.Text.Json;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Contracts;

namespace CrmSecurity.Identity.Authorization.Risk;

/// <summary><c>Identity:RiskAccess</c>: whether the analyzer's findings change decisions, and the policy file that says how.</summary>
internal sealed class RiskAccessSettings
{
    /// <summary>False switches risk-based access off: decisions are the model's alone.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>A policy file replacing the shipped <c>policies/risk-access.json</c>; empty for the shipped one.</summary>
    public string? Policy { get; set; }
}

/// <summary>What a finding of one severity does to the decisions about its user.</summary>
/// <param name="Deny">Actions refused while it is open.</param>
/// <param name="MaskSecuredFields">Secured fields read masked and are not decrypted.</param>
/// <param name="StepUp">The second factor every other allowed decision obliges the app to ask for first (<c>mfa</c>), or null.</param>
internal sealed record RiskEffect(IReadOnlySet<CrmAction> Deny, bool MaskSecuredFields, string? StepUp);

/// <summary>
/// Risk that changes access (<c>policies/risk-access.json</c>): per severity of the user's riskiest open finding, actions
/// denied, secured fields masked, and a step-up obligation. Every effect names the finding in the decision's reason, so an
/// app and an auditor can say why; it ends when an auditor dismisses or resolves the finding (the analyzer's snapshot
/// drops it within a poll interval), and beginning and end are in the audit trail (<c>risk.in_effect</c>, <c>risk.lifted</c>).
/// </summary>
internal sealed class RiskAccess(IReadOnlyDictionary<string, RiskEffect> levels, IUserRisks risks, bool enabled)
{
    private static readonly string[] Levels = ["medium", "high", "critical"];

    private static readonly JsonDocumentOptions FileOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>The finding in effect for <paramref name="userId"/> and what it does, or null when nothing applies.</summary>
    public (UserRisk Finding, RiskEffect Effect)? For(string userId)
    {
        if (!enabled || risks.Find(userId) is not { } finding || !levels.TryGetValue(finding.Severity, out var effect))
        {
            return null;
        }

        return (finding, effect);
    }

    /// <summary>
    /// Applies the user's risk to a decision the model allowed: a denied action becomes a refusal with basis <c>risk</c>;
    /// any other allowed action carries the step-up obligation when the level asks for one. A refusal stays a refusal.
    /// </summary>
    public CheckResponse Apply(CheckResponse decision, string userId, CrmAction action)
    {
        if (!decision.Allowed || For(userId) is not ({ } finding, { } effect))
        {
            return decision;
        }

        if (effect.Deny.Contains(action))
        {
            return decision with
            {
                Allowed = false,
                Basis = "risk",
                Reason = $"{action.Name()} denied: open {finding.Severity} finding {finding.FindingId} ({Describe(finding)}); the model alone would allow it ({decision.Reason})",
                Role = null,
                ViaTeam = null,
                Depth = null,
                Share = null,
                ManagerLevels = null,
            };
        }

        return effect.StepUp is { } factor
            ? decision with
            {
                Obligations = [new DecisionObligation { Type = "step_up", Value = factor, Reason = $"open {finding.Severity} finding {finding.FindingId} ({Describe(finding)})" }],
            }
            : decision;
    }

    /// <summary>Secured fields (sensitive and secret) the user may read become masked while the level says so.</summary>
    public static FieldAccess Field(FieldAccess access, Sensitivity sensitivity, RiskEffect? effect) =>
        effect is { MaskSecuredFields: true } && sensitivity >= Sensitivity.Sensitive && access > FieldAccess.Masked ? FieldAccess.Masked : access;

    private static string Describe(UserRisk finding) =>
        string.Create(CultureInfo.InvariantCulture, $"{finding.Detector} detected {finding.DetectedAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC: {finding.TopReason}");

    /// <summary>Reads the policy (the shipped one when <paramref name="path"/> is empty); every problem is added to <paramref name="errors"/> with file and setting.</summary>
    public static IReadOnlyDictionary<string, RiskEffect> Read(string? path, List<string> errors)
    {
        var name = string.IsNullOrWhiteSpace(path) ? "policies/risk-access.json" : path;
        string text;
        try
        {
            if (string.IsNullOrWhiteSpace(path))
            {
                using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("CrmSecurity.Identity.risk-access.json")!;
                using var reader = new StreamReader(stream);
                text = reader.ReadToEnd();
            }
            else
            {
                text = File.ReadAllText(path);
            }
        }
        catch (IOException e)
        {
            errors.Add($"Identity:RiskAccess:Policy: cannot read '{name}' ({e.Message})");
            return new Dictionary<string, RiskEffect>();
        }

        var result = new Dictionary<string, RiskEffect>(StringComparer.Ordinal);
        try
        {
            using var document = JsonDocument.Parse(text, FileOptions);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{name}: the policy must be a JSON object with levels {string.Join(", ", Levels)}");
                return result;
            }

            foreach (var level in document.RootElement.EnumerateObject())
            {
                if (!Levels.Contains(level.Name, StringComparer.Ordinal))
                {
                    errors.Add($"{name}: unknown level '{level.Name}' (use {string.Join(", ", Levels)})");
                    continue;
                }

                if (ReadEffect(name, level, errors) is { } effect)
                {
                    result[level.Name] = effect;
                }
            }
        }
        catch (JsonException e)
        {
            errors.Add($"{name}: not valid JSON at line {e.LineNumber + 1}: {e.Message}");
        }

        return result;
    }

    private static RiskEffect? ReadEffect(string file, JsonProperty level, List<string> errors)
    {
        if (level.Value.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{file}: {level.Name} must be an object (deny, mask_secured_fields, step_up)");
            return null;
        }

        var deny = new HashSet<CrmAction>();
        var mask = false;
        string? stepUp = null;
        foreach (var setting in level.Value.EnumerateObject())
        {
            var where = $"{file}: {level.Name}.{setting.Name}";
            switch (setting.Name)
            {
                case "deny" when setting.Value.ValueKind == JsonValueKind.Array:
                    foreach (var item in setting.Value.EnumerateArray())
                    {
                        if (!CrmNames.TryParseAction(item.ValueKind == JsonValueKind.String ? item.GetString() : null, out var action))
                        {
                            errors.Add($"{where}: unknown action {item.GetRawText()} (use {CrmNames.ActionList})");
                        }
                        else
                        {
                            deny.Add(action);
                        }
                    }

                    break;
                case "mask_secured_fields" when setting.Value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                    mask = setting.Value.GetBoolean();
                    break;
                case "step_up" when setting.Value.ValueKind == JsonValueKind.String && setting.Value.GetString() == "mfa":
                    stepUp = "mfa";
                    break;
                case "deny" or "mask_secured_fields" or "step_up":
                    errors.Add($"{where}: bad value {setting.Value.GetRawText()} (deny: a list of actions; mask_secured_fields: true or false; step_up: \"mfa\")");
                    break;
                default:
                    errors.Add($"{where}: unknown setting (use deny, mask_secured_fields, step_up)");
                    break;
            }
        }

        return new RiskEffect(deny, mask, stepUp);
    }
}
