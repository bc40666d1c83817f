using System.Reflection;

namespace CrmSecurity.AuditAnalyzer.Policy;

/// <summary>
/// Weights and thresholds of the detectors, read from <c>policies/audit-analyzer.json</c> (or a file given
/// with <c>--policy</c> / <c>AuditAnalyzer:Policy</c>) and validated before any event is read.
/// </summary>
internal sealed record ScoringPolicy
{
    public string Source { get; init; } = "(defaults)";

    public TimeSpan Lateness { get; init; } = TimeSpan.FromMinutes(60);

    /// <summary>Active days of history before a user's own baseline is trusted; until then the user is in learning mode.</summary>
    public int LearningMinActiveDays { get; init; } = 10;

    /// <summary>Active days kept in a user's long-term history (older than the recent window).</summary>
    public int HistoryDays { get; init; } = 60;

    public double MediumScore { get; init; } = 40;

    public double HighScore { get; init; } = 65;

    public double CriticalScore { get; init; } = 85;

    /// <summary>Findings below this score are not written at all.</summary>
    public double MinFindingScore { get; init; } = 20;

    public TimeSpan CorrelationWindow { get; init; } = TimeSpan.FromHours(24);

    public IReadOnlySet<string> AdminRoles { get; init; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase);

    public IReadOnlySet<string> BusinessEntities { get; init; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase);

    public BulkExportPolicy BulkExport { get; init; } = new();

    public IReadOnlyList<SensitiveEntityLimit> SensitiveEntities { get; init; } = [];

    public OddHoursPolicy OddHours { get; init; } = new();

    public PrivilegePolicy Privilege { get; init; } = new();

    /// <summary>Multiplier per reason code (e.g. <c>bulk_export.own_history</c>); 1 when not listed.</summary>
    public IReadOnlyDictionary<string, double> Weights { get; init; } = new Dictionary<string, double>();

    public double Weight(string code) => Weights.TryGetValue(code, out var weight) ? weight : 1.0;

    public Severity SeverityOf(double score) =>
        score >= CriticalScore ? Severity.Critical : score >= HighScore ? Severity.High : score >= MediumScore ? Severity.Medium : Severity.Low;

    public SensitiveEntityLimit? LimitFor(string? entity)
    {
        if (entity is null)
        {
            return null;
        }

        foreach (var limit in SensitiveEntities)
        {
            if (string.Equals(limit.Entity, entity, StringComparison.OrdinalIgnoreCase))
            {
                return limit;
            }
        }

        return null;
    }

    /// <summary>The policy shipped with the analyzer (policies/audit-analyzer.json, embedded at build time).</summary>
    public static ScoringPolicy Default()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("CrmSecurity.AuditAnalyzer.default-policy.json")
            ?? throw new InvalidOperationException("The default policy is missing from the assembly.");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return PolicyReader.Parse(memory.ToArray(), "policies/audit-analyzer.json (built in)");
    }
}

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
}

internal sealed record OddHoursPolicy
{
    /// <summary>An hour is rare when the user was active around it on less than this share of their active days.</summary>
    public double MaxShare { get; init; } = 0.02;

    /// <summary>Width (hours) of the smoothing over neighbouring hours of the week.</summary>
    public double KernelHours { get; init; } = 1.5;

    /// <summary>Odd-hour sign-in with no data touched scores at most this (low).</summary>
    public double LoginOnlyMaxScore { get; init; } = 30;

    /// <summary>Records touched at odd hours, in hours of the user's typical work, at which the data part of the score is half-way.</summary>
    public double HalfScoreHoursOfWork { get; init; } = 1;
}

internal sealed record PrivilegePolicy
{
    public TimeSpan EscalationWindow { get; init; } = TimeSpan.FromHours(24);

    /// <summary>A first-seen entity/action is rare when at most this share of peers has ever done it.</summary>
    public double FirstSeenMaxPeerShare { get; init; } = 0.05;

    public int DormantDays { get; init; } = 45;

    public double MassDecryptMinValues { get; init; } = 200;

    public double MassDecryptOverHistoryMax { get; init; } = 3;

    public double AdminDataMinRecords { get; init; } = 500;

    public double AdminDataOverHistoryMax { get; init; } = 3;
}
