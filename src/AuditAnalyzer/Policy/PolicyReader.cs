using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.Shared;

namespace CrmSecurity.AuditAnalyzer.Policy;

/// <summary>Turns a policy file into a <see cref="ScoringPolicy"/>, or a <see cref="PolicyException"/> naming file, line and setting for every problem.</summary>
internal static class PolicyReader
{
    /// <summary>A byte-order mark is broken JSON, a repeated name replaces the earlier one, and content after the root object is broken JSON.</summary>
    private static readonly PolicyJsonRules Rules = new() { RefuseTrailingContent = true };

    public static ScoringPolicy Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new PolicyException([$"{path}: the policy file does not exist"]);
        }

        return Parse(File.ReadAllBytes(path), path);
    }

    public static ScoringPolicy Parse(byte[] json, string file)
    {
        var problems = new List<string>();
        var root = PolicyNode.Parse(json, file, problems, Rules) ?? throw new PolicyException(problems);
        if (root.Properties is null)
        {
            throw new PolicyException([$"{file}:{root.Line}: the policy must be a JSON object"]);
        }

        var top = new PolicySection(file, "", root, problems);
        var defaults = new ScoringPolicy();
        var severity = top.Section("severity");
        var bulk = top.Section("bulk_export");
        var odd = top.Section("odd_hours");
        var privilege = top.Section("privilege");
        var departure = top.Section("departure");
        var snooping = top.Section("snooping");
        var sharing = top.Section("sharing");
        var massDelete = top.Section("mass_delete");
        var takeover = top.Section("account_takeover");
        var policy = new ScoringPolicy
        {
            Source = file,
            Lateness = TimeSpan.FromMinutes(top.Number("lateness_minutes", defaults.Lateness.TotalMinutes, 0, 7 * 24 * 60)),
            LearningMinActiveDays = top.Integer("learning_min_active_days", defaults.LearningMinActiveDays, 1, 365),
            OrganisationLearningDays = top.Integer("organisation_learning_days", defaults.OrganisationLearningDays, 0, 365),
            HistoryDays = top.Integer("history_days", defaults.HistoryDays, 7, 365),
            MediumScore = severity?.Number("medium", defaults.MediumScore, 1, 100) ?? defaults.MediumScore,
            HighScore = severity?.Number("high", defaults.HighScore, 1, 100) ?? defaults.HighScore,
            CriticalScore = severity?.Number("critical", defaults.CriticalScore, 1, 100) ?? defaults.CriticalScore,
            MinFindingScore = top.Number("min_finding_score", defaults.MinFindingScore, 0, 100),
            CorrelationWindow = TimeSpan.FromHours(top.Number("correlation_window_hours", defaults.CorrelationWindow.TotalHours, 1, 24 * 7)),
            AdminRoles = Set(top.Strings("admin_roles", [])),
            BusinessEntities = Set(top.Strings("business_entities", [])),
            BulkExport = bulk is null ? defaults.BulkExport : BulkExportPolicy.Read(bulk),
            SensitiveEntities = top.Sections("sensitive_entities").Select(SensitiveEntityLimit.Read).ToList(),
            OddHours = odd is null ? defaults.OddHours : OddHoursPolicy.Read(odd),
            Privilege = privilege is null ? defaults.Privilege : PrivilegePolicy.Read(privilege),
            Departure = departure is null ? defaults.Departure : DeparturePolicy.Read(departure),
            Snooping = snooping is null ? defaults.Snooping : SnoopingPolicy.Read(snooping),
            Sharing = sharing is null ? defaults.Sharing : SharingPolicy.Read(sharing),
            MassDelete = massDelete is null ? defaults.MassDelete : MassDeletePolicy.Read(massDelete),
            Takeover = takeover is null ? defaults.Takeover : TakeoverPolicy.Read(takeover),
            Weights = ReadWeights(top.Section("weights")),
        };

        if (severity is not null)
        {
            if (!(policy.MediumScore < policy.HighScore && policy.HighScore < policy.CriticalScore))
            {
                severity.Problem(top.LineOf("severity"), "", "must rise: medium < high < critical");
            }

            severity.RejectUnknown();
        }

        top.RejectUnknown();
        if (problems.Count > 0)
        {
            throw new PolicyException(problems);
        }

        return policy;
    }

    private static Dictionary<string, double> ReadWeights(PolicySection? s)
    {
        var weights = new Dictionary<string, double>(StringComparer.Ordinal);
        if (s is null)
        {
            return weights;
        }

        foreach (var code in Detection.ReasonCodes.All)
        {
            var weight = s.Number(code, double.NaN, 0, 5);
            if (!double.IsNaN(weight))
            {
                weights[code] = weight;
            }
        }

        s.RejectUnknown();
        return weights;
    }

    internal static HashSet<string> Set(IReadOnlyList<string> values) => new(values, StringComparer.OrdinalIgnoreCase);
}
