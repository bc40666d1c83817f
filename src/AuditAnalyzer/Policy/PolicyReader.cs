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
        var policy = new ScoringPolicy
        {
            Source = file,
            Lateness = TimeSpan.FromMinutes(top.Number("lateness_minutes", defaults.Lateness.TotalMinutes, 0, 7 * 24 * 60)),
            LearningMinActiveDays = top.Integer("learning_min_active_days", defaults.LearningMinActiveDays, 1, 365),
            HistoryDays = top.Integer("history_days", defaults.HistoryDays, 7, 365),
            MediumScore = severity?.Number("medium", defaults.MediumScore, 1, 100) ?? defaults.MediumScore,
            HighScore = severity?.Number("high", defaults.HighScore, 1, 100) ?? defaults.HighScore,
            CriticalScore = severity?.Number("critical", defaults.CriticalScore, 1, 100) ?? defaults.CriticalScore,
            MinFindingScore = top.Number("min_finding_score", defaults.MinFindingScore, 0, 100),
            CorrelationWindow = TimeSpan.FromHours(top.Number("correlation_window_hours", defaults.CorrelationWindow.TotalHours, 1, 24 * 7)),
            AdminRoles = Set(top.Strings("admin_roles", [])),
            BusinessEntities = Set(top.Strings("business_entities", [])),
            BulkExport = bulk is null ? defaults.BulkExport : ReadBulk(bulk),
            SensitiveEntities = top.Sections("sensitive_entities").Select(ReadLimit).ToList(),
            OddHours = odd is null ? defaults.OddHours : ReadOddHours(odd),
            Privilege = privilege is null ? defaults.Privilege : ReadPrivilege(privilege),
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

    private static BulkExportPolicy ReadBulk(PolicySection s)
    {
        var d = new BulkExportPolicy();
        var result = new BulkExportPolicy
        {
            MinRecordsPerDay = s.Number("min_records_per_day", d.MinRecordsPerDay, 1, 1e9),
            RobustZ = s.Number("robust_z", d.RobustZ, 1, 100),
            OverHistoryMax = s.Number("over_history_max", d.OverHistoryMax, 1, 100),
            PeerQuantile = s.Number("peer_quantile", d.PeerQuantile, 0.5, 0.9999),
            OverPeerQuantile = s.Number("over_peer_quantile", d.OverPeerQuantile, 1, 100),
            OwnOnlyFactor = s.Number("own_only_factor", d.OwnOnlyFactor, 0, 1),
            CumulativeOverTypical = s.Number("cumulative_over_typical", d.CumulativeOverTypical, 1, 1000),
            CumulativeMinRecords = s.Number("cumulative_min_records", d.CumulativeMinRecords, 1, 1e12),
        };
        s.RejectUnknown();
        return result;
    }

    private static SensitiveEntityLimit ReadLimit(PolicySection s)
    {
        var entity = s.String("entity");
        if (entity is null)
        {
            s.Problem(s.LineOf("entity"), "entity", "is required");
        }

        var limit = new SensitiveEntityLimit
        {
            Entity = entity ?? "?",
            MaxRecordsPerEvent = s.Number("max_records_per_event", double.PositiveInfinity, 1, double.MaxValue),
            MaxRecordsPerDay = s.Number("max_records_per_day", double.PositiveInfinity, 1, double.MaxValue),
            MaxRecordsPer30Days = s.Number("max_records_per_30_days", double.PositiveInfinity, 1, double.MaxValue),
            ExemptDepartments = Set(s.Strings("exempt_departments", [])),
            ExemptRoles = Set(s.Strings("exempt_roles", [])),
            Line = s.LineOf("entity"),
        };
        s.RejectUnknown();
        return limit;
    }

    private static OddHoursPolicy ReadOddHours(PolicySection s)
    {
        var d = new OddHoursPolicy();
        var result = new OddHoursPolicy
        {
            MaxShare = s.Number("max_share", d.MaxShare, 0.0001, 0.5),
            KernelHours = s.Number("kernel_hours", d.KernelHours, 0.25, 6),
            LoginOnlyMaxScore = s.Number("login_only_max_score", d.LoginOnlyMaxScore, 0, 100),
            HalfScoreHoursOfWork = s.Number("half_score_hours_of_work", d.HalfScoreHoursOfWork, 0.01, 100),
        };
        s.RejectUnknown();
        return result;
    }

    private static PrivilegePolicy ReadPrivilege(PolicySection s)
    {
        var d = new PrivilegePolicy();
        var result = new PrivilegePolicy
        {
            EscalationWindow = TimeSpan.FromHours(s.Number("escalation_window_hours", d.EscalationWindow.TotalHours, 1, 24 * 30)),
            FirstSeenMaxPeerShare = s.Number("first_seen_max_peer_share", d.FirstSeenMaxPeerShare, 0, 1),
            DormantDays = s.Integer("dormant_days", d.DormantDays, 7, 3650),
            MassDecryptMinValues = s.Number("mass_decrypt_min_values", d.MassDecryptMinValues, 1, 1e9),
            MassDecryptOverHistoryMax = s.Number("mass_decrypt_over_history_max", d.MassDecryptOverHistoryMax, 1, 1000),
            AdminDataMinRecords = s.Number("admin_data_min_records", d.AdminDataMinRecords, 1, 1e9),
            AdminDataOverHistoryMax = s.Number("admin_data_over_history_max", d.AdminDataOverHistoryMax, 1, 1000),
        };
        s.RejectUnknown();
        return result;
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

    private static HashSet<string> Set(IReadOnlyList<string> values) => new(values, StringComparer.OrdinalIgnoreCase);
}
