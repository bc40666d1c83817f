using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Subtle departure: in the weeks before a known termination date (from the directory: Identity's employment dates or
/// the directory file's <c>terminated</c> column), a user exports a few times their own normal. Each day alone stays
/// under the bulk-export thresholds, which are built for strangers to the data; a leaver taking "their" customers
/// does it a little at a time. The rolling total is judged against the user's own long-term export mean for as many
/// active days (from history older than the recent window, so the taking cannot raise its own baseline) and against
/// the highest total of as many consecutive active days in that history, one or two spike days capped (they have done it
/// before); with too little
/// history of their own it says nothing. A pure function of the event, the directory and the baselines.
/// </summary>
internal sealed class DepartureDetector : IDetector
{
    public static DepartureDetector Instance { get; } = new();

    public string Name => DetectorNames.Departure;

    /// <summary>ECS event.category: the exports read data.</summary>
    public string EcsCategory => "database";

    /// <summary>Long-term history (active days older than the recent window) needed before a user's own normal is trusted.</summary>
    private const int MinHistoryDays = 20;

    public IReadOnlyList<string> Codes { get; } = [ReasonCodes.ExportsBeforeLeaving];

    public void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        if (e.Action != AccessAction.Export || !e.Succeeded || view.Directory?.Terminated is not { } terminated)
        {
            return;
        }

        var rules = policy.Departure;
        var daysLeft = terminated.DayNumber - view.Time.Day;
        if (daysLeft < 0 || daysLeft > rules.WatchDays)
        {
            return; // after the date the privilege detector's after_termination speaks; long before it, nothing is special
        }

        var p = view.Profile;
        var (sum, active) = view.Baseline.RollingSum(rules.RollingDays, d => d.Exported, view.Peers.IsGroupWide);
        if (sum < rules.MinRecords)
        {
            return;
        }

        if (p.LongTermDays < MinHistoryDays)
        {
            return; // "a few times their own normal" needs their own normal: peers' exports are no measure of one person's
        }

        var normal = p.LongTermExportMean * Math.Max(active, 1);
        // "They have done it before" means weeks like these, not one or two big days: each history day counts at most the
        // third largest (about the 95th percentile of 60 days), so a single spike does not hide a month of taking.
        var cap = view.Baseline.HistoryLargest(view.Baseline.HistoryExported, 3);
        var highest = view.Baseline.MaxHistoryRun(active, view.Baseline.HistoryExported, cap);
        var threshold = Math.Max(rules.MinRecords, Math.Max(rules.OverOwnNormal * normal, rules.OverHistoryMax * highest));
        if (sum <= threshold)
        {
            return;
        }

        var score = ScoreCurve.Over(sum, threshold, 60);
        var basis = $"their own, from {p.LongTermDays} days of history; highest {active} active days before: {Numbers.N(highest)}";
        DetectorSignals.Add(signals, view, e, ReasonCodes.ExportsBeforeLeaving, score * policy.Weight(ReasonCodes.ExportsBeforeLeaving),
            $"records exported over the last {rules.RollingDays} days with the termination date {terminated:yyyy-MM-dd} {daysLeft} days ahead: typical {Numbers.N(normal)} ({basis}), actual {Numbers.N(sum)}",
            normal, sum);
    }
}

/// <summary>The detector's name in findings.</summary>
internal static partial class DetectorNames
{
    public const string Departure = "departure";
}

/// <summary>The detector's stable reason codes.</summary>
internal static partial class ReasonCodes
{
    public const string ExportsBeforeLeaving = "departure.exports_before_leaving";
}
