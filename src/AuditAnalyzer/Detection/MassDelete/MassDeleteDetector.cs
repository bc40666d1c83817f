using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Mass deletion: records deleted in one day a few times the most the user ever deleted (sabotage before leaving,
/// covering tracks), not only the thousands a bulk threshold would need. Silent in learning mode.
/// </summary>
internal sealed class MassDeleteDetector : IDetector
{
    public static MassDeleteDetector Instance { get; } = new();

    public string Name => DetectorNames.MassDelete;

    /// <summary>ECS event.category: business records are destroyed.</summary>
    public string EcsCategory => "database";

    public IReadOnlyList<string> Codes { get; } = [ReasonCodes.MassDelete];

    /// <summary>True for a successful delete: what the day's <see cref="DayCounters.Deleted"/> counter adds up.</summary>
    public static bool IsDelete(AccessEvent e) => e.Succeeded && e.Action == AccessAction.Delete;

    public void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        if (!IsDelete(e) || view.Profile.Learning)
        {
            return;
        }

        var rules = policy.MassDelete;
        var actual = view.Baseline.Today.Counters[DayCounters.Deleted];
        var before = actual - e.RecordCount;
        var stats = view.Profile.Counter(DayCounters.Deleted);
        var threshold = Math.Max(rules.MinRecords, rules.OverHistoryMax * stats.Max);
        if (actual <= threshold || (before > threshold && actual < before * 1.25))
        {
            return;
        }

        var score = ScoreCurve.Over(actual, threshold, 60) * policy.Weight(ReasonCodes.MassDelete);
        DetectorSignals.Add(signals, view, e, ReasonCodes.MassDelete, score,
            $"records deleted today: typical at most {Numbers.N(stats.Max)} a day, actual {Numbers.N(actual)}", stats.Max, actual);
    }
}

/// <summary>The detector's name in findings.</summary>
internal static partial class DetectorNames
{
    public const string MassDelete = "mass_delete";
}

/// <summary>The detector's stable reason codes.</summary>
internal static partial class ReasonCodes
{
    public const string MassDelete = "mass_delete.records";
}
