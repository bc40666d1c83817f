using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Bulk export: records exported per day against the user's own history (median/MAD and their highest
/// day), against the peer group's daily quantile, against hard limits on sensitive entities, and rolling
/// 7/30-day totals for low-and-slow exfiltration. A pure function of the event and the baselines.
/// </summary>
internal sealed class BulkExportDetector : IDetector
{
    public static BulkExportDetector Instance { get; } = new();

    public string Name => DetectorNames.BulkExport;

    /// <summary>ECS event.category: bulk exports read data.</summary>
    public string EcsCategory => "database";

    public IReadOnlyList<string> Codes { get; } = [ReasonCodes.OwnHistory, ReasonCodes.PeerHistory, ReasonCodes.SensitiveLimit, ReasonCodes.Cumulative7, ReasonCodes.Cumulative30];

    public void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        if (e.Action != AccessAction.Export || !e.Succeeded)
        {
            return;
        }

        var p = view.Profile;
        var rules = policy.BulkExport;
        ref readonly var today = ref view.Baseline.Today;
        double exported = today.Exported;
        var entity = e.Entity ?? "records";
        var peerThreshold = double.IsNaN(p.PeerExportQuantile) ? double.NaN : Math.Max(rules.MinRecordsPerDay, rules.OverPeerQuantile * p.PeerExportQuantile);
        var peerAnomalous = double.IsNaN(peerThreshold) || exported > peerThreshold;

        if (exported >= rules.MinRecordsPerDay)
        {
            if (!p.Learning && exported > p.OwnExportThreshold)
            {
                var score = ScoreCurve.Over(exported, p.OwnExportThreshold) * (peerAnomalous ? 1 : rules.OwnOnlyFactor);
                // Typical: the median export day (days without exports would make it 0 for most users).
                var typical = p.LogExport.Count > 0 ? Math.Exp(p.LogExport.Median) : 0;
                DetectorSignals.Add(signals, view, e, ReasonCodes.OwnHistory, score * policy.Weight(ReasonCodes.OwnHistory),
                    $"records exported today ({entity} last): typical {Numbers.N(typical)} on a day with exports ({p.LogExport.Count} of {p.Export.Count} days of history), actual {Numbers.N(exported)} (highest day before: {Numbers.N(p.Export.Max)})",
                    typical, exported);
            }

            if (!double.IsNaN(peerThreshold) && exported > peerThreshold)
            {
                var learningNote = p.Learning ? $"; learning mode ({p.ActiveDaysBefore} of {policy.LearningMinActiveDays} days of own history), so compared with peers" : "";
                var factor = p.Learning ? 0.9 : exported > p.OwnExportThreshold ? 0.8 : 0;
                var score = ScoreCurve.Over(exported, peerThreshold) * factor;
                DetectorSignals.Add(signals, view, e, ReasonCodes.PeerHistory, score * policy.Weight(ReasonCodes.PeerHistory),
                    $"records exported today against peers ({view.Peers.Group}): typical {Numbers.N(p.PeerExportQuantile)} ({rules.PeerQuantile:P0} of member-days), actual {Numbers.N(exported)}{learningNote}",
                    p.PeerExportQuantile, exported);
            }
        }

        if (policy.LimitFor(e.Entity) is { } limit && !Exempt(limit, view))
        {
            var entityToday = view.Baseline.SensitiveRollingSum(limit.Entity, 1);
            var entity30 = view.Baseline.SensitiveRollingSum(limit.Entity, 30);
            var (score, text, typical, actual) = (0.0, "", 0.0, 0.0);
            void Consider(double value, double max, double floor, string what)
            {
                var s = ScoreCurve.Over(value, max, floor);
                if (s > score)
                {
                    (score, text, typical, actual) = (s, $"{limit.Entity} records {what}: policy limit {Numbers.N(max)}, actual {Numbers.N(value)}", max, value);
                }
            }

            Consider(e.RecordCount, limit.MaxRecordsPerEvent, 65, "in one export");
            Consider(entityToday, limit.MaxRecordsPerDay, 60, "exported today");
            Consider(entity30, limit.MaxRecordsPer30Days, 55, "exported in 30 days");
            if (score > 0)
            {
                DetectorSignals.Add(signals, view, e, ReasonCodes.SensitiveLimit, score * policy.Weight(ReasonCodes.SensitiveLimit), text, typical, actual);
            }
        }

        Cumulative(e, view, policy, 7, ReasonCodes.Cumulative7, signals);
        Cumulative(e, view, policy, 30, ReasonCodes.Cumulative30, signals);
    }

    private static void Cumulative(AccessEvent e, in UserView view, ScoringPolicy policy, int days, string code, List<Signal> signals)
    {
        var p = view.Profile;
        var rules = policy.BulkExport;
        var (sum, active) = view.Baseline.RollingSum(days, d => d.Exported, view.Peers.IsGroupWide);
        if (sum < rules.CumulativeMinRecords)
        {
            return;
        }

        // Expected total: the long-term mean per active day times the active days in the window, from
        // history older than the window (so a slow exfiltration cannot raise its own baseline), and never
        // below 1.5 x the highest total of as many consecutive active days in that history (they have
        // done it before). With under 20 days of long-term history the peers' mean is used instead.
        var fromPeers = p.LongTermDays < 20;
        var mean = fromPeers ? p.PeerExportMean : p.LongTermExportMean;
        if (fromPeers && double.IsNaN(p.PeerExportQuantile))
        {
            return;
        }

        var expected = mean * Math.Max(active, 1);
        var highest = fromPeers ? 0 : view.Baseline.MaxHistoryRun(active, view.Baseline.HistoryExported);
        var threshold = Math.Max(rules.CumulativeMinRecords, Math.Max(rules.CumulativeOverTypical * expected, rules.OverHistoryMax * highest));
        if (sum <= threshold)
        {
            return;
        }

        var score = ScoreCurve.Over(sum, threshold) * 0.95;
        var basis = fromPeers ? $"from peers ({view.Peers.Group})" : $"from {p.LongTermDays} days of history before the window";
        DetectorSignals.Add(signals, view, e, code, score * policy.Weight(code),
            $"records exported over the last {days} days: typical {Numbers.N(expected)} ({basis}), actual {Numbers.N(sum)}",
            expected, sum);
    }

    private static bool Exempt(SensitiveEntityLimit limit, in UserView view) =>
        view.Directory is { } user && (limit.ExemptDepartments.Contains(user.Department) || user.Roles.Any(limit.ExemptRoles.Contains));
}

/// <summary>The detector's name in findings.</summary>
internal static partial class DetectorNames
{
    public const string BulkExport = "bulk_export";
}

/// <summary>The detector's stable reason codes.</summary>
internal static partial class ReasonCodes
{
    public const string OwnHistory = "bulk_export.own_history";

    public const string PeerHistory = "bulk_export.peers";

    public const string SensitiveLimit = "bulk_export.sensitive_limit";

    public const string Cumulative7 = "bulk_export.cumulative_7d";

    public const string Cumulative30 = "bulk_export.cumulative_30d";
}
