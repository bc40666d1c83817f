using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>The <c>bulk_export</c> section of the policy.</summary>
internal sealed record BulkExportPolicy
{
    /// <summary>Below this many records in a day no export is called bulk, whatever the baseline.</summary>
    public double MinRecordsPerDay { get; init; } = 500;

    /// <summary>Robust z-score (median and MAD, on the log scale of export days) a day must exceed.</summary>
    public double RobustZ { get; init; } = 3.5;

    /// <summary>A day must also exceed the user's highest day in history by this factor (they have done X before).</summary>
    public double OverHistoryMax { get; init; } = 1.5;

    public double PeerQuantile { get; init; } = 0.99;

    public double OverPeerQuantile { get; init; } = 2;

    /// <summary>Score factor when the day is unusual for the user but normal among peers.</summary>
    public double OwnOnlyFactor { get; init; } = 0.6;

    /// <summary>Rolling total over the typical total for as many days (from history older than the window).</summary>
    public double CumulativeOverTypical { get; init; } = 4;

    public double CumulativeMinRecords { get; init; } = 3000;

    /// <summary>Reads the policy file's section, each problem named with file, line and setting.</summary>
    internal static BulkExportPolicy Read(PolicySection s)
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
}

/// <summary>A hard limit on a sensitive entity, like a Salesforce Transaction Security policy ("more than 2,000 lead rows").</summary>
internal sealed record SensitiveEntityLimit
{
    public required string Entity { get; init; }

    public double MaxRecordsPerEvent { get; init; } = double.PositiveInfinity;

    public double MaxRecordsPerDay { get; init; } = double.PositiveInfinity;

    public double MaxRecordsPer30Days { get; init; } = double.PositiveInfinity;

    public IReadOnlySet<string> ExemptDepartments { get; init; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase);

    public IReadOnlySet<string> ExemptRoles { get; init; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase);

    public int Line { get; init; }

    /// <summary>Reads the policy file's section, each problem named with file, line and setting.</summary>
    internal static SensitiveEntityLimit Read(PolicySection s)
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
            ExemptDepartments = PolicyReader.Set(s.Strings("exempt_departments", [])),
            ExemptRoles = PolicyReader.Set(s.Strings("exempt_roles", [])),
            Line = s.LineOf("entity"),
        };
        s.RejectUnknown();
        return limit;
    }
}
