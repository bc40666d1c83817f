using System.Reflection;
using CrmSecurity.AuditAnalyzer.Detection;

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

    /// <summary>
    /// Calendar days the organisation itself needs behind it (from the first event the analyzer saw) before reasons that
    /// judge against history speak: on a new installation every user and every peer group is new, so everything would be
    /// "first seen" or "rare". Until then only <see cref="ReasonCodes.WithoutHistory"/> reasons are raised. 0 turns the gate off.
    /// </summary>
    public int OrganisationLearningDays { get; init; } = 14;

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

    public DeparturePolicy Departure { get; init; } = new();

    public SnoopingPolicy Snooping { get; init; } = new();

    public SharingPolicy Sharing { get; init; } = new();

    public MassDeletePolicy MassDelete { get; init; } = new();

    public TakeoverPolicy Takeover { get; init; } = new();

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

