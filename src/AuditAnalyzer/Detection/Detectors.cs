using System.Collections.Concurrent;
using System.Globalization;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

internal static class Numbers
{
    public static string N(double value) => Math.Round(value).ToString("N0", CultureInfo.InvariantCulture);

    public static string Percent(double share) => (share * 100).ToString(share < 0.1 ? "0.#" : "0", CultureInfo.InvariantCulture) + "%";
}

/// <summary>
/// Bulk export: records exported per day against the user's own history (median/MAD and their highest
/// day), against the peer group's daily quantile, against hard limits on sensitive entities, and rolling
/// 7/30-day totals for low-and-slow exfiltration. A pure function of the event and the baselines.
/// </summary>
internal static class BulkExportDetector
{
    public static void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
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
                Add(signals, view, e, ReasonCodes.OwnHistory, score * policy.Weight(ReasonCodes.OwnHistory),
                    $"records exported today ({entity} last): typical {Numbers.N(typical)} on a day with exports ({p.LogExport.Count} of {p.Export.Count} days of history), actual {Numbers.N(exported)} (highest day before: {Numbers.N(p.Export.Max)})",
                    typical, exported);
            }

            if (!double.IsNaN(peerThreshold) && exported > peerThreshold)
            {
                var learningNote = p.Learning ? $"; learning mode ({p.ActiveDaysBefore} of {policy.LearningMinActiveDays} days of own history), so compared with peers" : "";
                var factor = p.Learning ? 0.9 : exported > p.OwnExportThreshold ? 0.8 : 0;
                var score = ScoreCurve.Over(exported, peerThreshold) * factor;
                Add(signals, view, e, ReasonCodes.PeerHistory, score * policy.Weight(ReasonCodes.PeerHistory),
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
                Add(signals, view, e, ReasonCodes.SensitiveLimit, score * policy.Weight(ReasonCodes.SensitiveLimit), text, typical, actual);
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
        Add(signals, view, e, code, score * policy.Weight(code),
            $"records exported over the last {days} days: typical {Numbers.N(expected)} ({basis}), actual {Numbers.N(sum)}",
            expected, sum);
    }

    private static bool Exempt(SensitiveEntityLimit limit, in UserView view) =>
        view.Directory is { } user && (limit.ExemptDepartments.Contains(user.Department) || user.Roles.Any(limit.ExemptRoles.Contains));

    internal static void Add(List<Signal> signals, in UserView view, AccessEvent e, string code, double score, string text, double? typical, double? actual)
    {
        if (score <= 0)
        {
            return;
        }

        signals.Add(new Signal(new Reason(code, Math.Round(Math.Min(100, score), 1), text, typical, actual), e.Timestamp, Evidence(view, e), view.Profile.Learning));
    }

    internal static IReadOnlyList<string> Evidence(in UserView view, AccessEvent e)
    {
        var list = new List<string>(Math.Min(view.DayEvidence.Count + 1, 21));
        foreach (var id in view.DayEvidence)
        {
            list.Add(id);
        }

        if (!list.Contains(e.EventId))
        {
            list.Add(e.EventId);
        }

        return list;
    }
}

/// <summary>
/// Odd hours: how rare this hour of the week is for the user, in their local time (or, when travelling,
/// in the local time of the country they are in). Night-shift workers' nights are their normal hours.
/// The data touched at odd hours drives most of the score; a sign-in alone stays low.
/// </summary>
internal static class OddHoursDetector
{
    public static void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        var hour = view.Hour;
        if (!hour.Rare || !e.Succeeded || e.Action is AccessAction.Logout or AccessAction.LoginFailed)
        {
            return;
        }

        var rules = policy.OddHours;
        // Squared, so an hour just under the rarity limit (an early start, a long evening) adds little and
        // an hour never seen adds all: the score follows how far the hour is from the user's habits.
        var rarity = Math.Pow(1 - Math.Min(1, hour.Share / rules.MaxShare), 2);
        // Data touched at odd hours is measured in hours of the user's typical work: a typical day's records
        // spread over their typical active hours per day.
        var typicalDay = Math.Max(50, view.Profile.Learning ? view.Profile.PeerReadMedian : view.Profile.Read.Median);
        var typicalHour = typicalDay / Math.Max(1, view.Profile.ActiveHoursPerDay);
        var hoursOfWork = view.OddHourRecordsToday / typicalHour;
        var dataPart = hoursOfWork / (hoursOfWork + rules.HalfScoreHoursOfWork);
        var score = 25 + (rarity * (15 + (45 * dataPart)));
        if (view.OddHourRecordsToday <= 0)
        {
            score = Math.Min(score, rules.LoginOnlyMaxScore);
        }

        if (hour.FromPeers)
        {
            score *= 0.8;
        }

        var who = hour.FromPeers ? $"peers ({view.Peers.Group}, learning mode)" : "this user";
        var where = hour.Travelling ? $" (in {hour.TravelCountry}'s local time)" : "";
        var touched = view.OddHourRecordsToday > 0
            ? $"; {Numbers.N(view.OddHourRecordsToday)} records touched at odd hours today, {hoursOfWork:0.#} hours of typical work ({Numbers.N(typicalHour)} records an hour)"
            : "; no data touched";
        BulkExportDetector.Add(signals, view with { DayEvidence = view.OddEvidence }, e, ReasonCodes.RareHour, score * policy.Weight(ReasonCodes.RareHour),
            $"active {hour.Weekday} {hour.Hour:00}:00-{hour.Hour:00}:59 local{where}: typical share of active days at this hour for {who} {Numbers.Percent(hour.Share)}, actual active{touched}",
            hour.Share, 1);
    }
}

/// <summary>
/// Privilege misuse: escalation (a grant used within hours for something rare), self-grants,
/// administrators reading business data beyond their norm, first-seen entity/actions rare among peers,
/// mass decrypt, dormant accounts active again, and any activity after termination.
/// </summary>
internal static class PrivilegeMisuseDetector
{
    public static void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        var rules = policy.Privilege;
        var p = view.Profile;
        var b = view.Baseline;

        if (view.Directory?.Terminated is { } terminated && view.Time.Day > terminated.DayNumber)
        {
            var score = e.Succeeded ? 92 : 50;
            BulkExportDetector.Add(signals, view, e, ReasonCodes.AfterTermination, score * policy.Weight(ReasonCodes.AfterTermination),
                $"activity after termination: terminated {terminated:yyyy-MM-dd}, actual {AccessActions.Name(e.Action)} on {view.Time.Local:yyyy-MM-dd HH:mm} local ({view.Time.Day - terminated.DayNumber} days later)",
                0, view.Time.Day - terminated.DayNumber);
        }

        if (p.DormantGapDays > 0 && e.Succeeded)
        {
            var touches = AccessActions.TouchesData(e.Action);
            var score = touches ? 70 : 50;
            BulkExportDetector.Add(signals, view, e, ReasonCodes.Dormant, score * policy.Weight(ReasonCodes.Dormant),
                $"account active again after {p.DormantGapDays} days without any activity: typical gap {p.TypicalGapDays} days, actual {p.DormantGapDays}{(touches ? $"; {AccessActions.Name(e.Action)} of {e.Entity ?? "data"}" : "")}",
                p.TypicalGapDays, p.DormantGapDays);
        }

        if (e.Action is AccessAction.AdminChange or AccessAction.Assign && e.Privilege is not null && e.Succeeded && !IsRevoke(e)
            && string.Equals(e.TargetUser, e.UserId, StringComparison.Ordinal))
        {
            BulkExportDetector.Add(signals, view, e, ReasonCodes.SelfGrant, 78 * policy.Weight(ReasonCodes.SelfGrant),
                $"granted '{e.Privilege}' to themselves: typical none (grants come from another administrator), actual a self-grant",
                0, 1);
        }

        var key = view.EntityAction;
        var firstSeen = view.FirstSeenEntityAction;
        if (firstSeen && e.Succeeded)
        {
            var peerShare = view.Peers.MemberShare(key!);
            var peerCount = view.Peers.Members.Count;
            var sensitive = e.Action is AccessAction.Export or AccessAction.Decrypt or AccessAction.Impersonate or AccessAction.AdminChange
                || policy.LimitFor(e.Entity) is not null;
            var grant = b.Grants.LastOrDefault(g => g.Ticks <= e.UtcTicks && e.UtcTicks - g.Ticks <= rules.EscalationWindow.Ticks);
            if (grant is not null && (peerCount < 5 || peerShare <= 0.2))
            {
                var hours = TimeSpan.FromTicks(e.UtcTicks - grant.Ticks).TotalHours;
                var score = 60 + (25 * (1 - (peerCount < 5 ? 0.5 : peerShare / 0.2))) + (sensitive ? 10 : 0);
                BulkExportDetector.Add(signals, view, e, ReasonCodes.Escalation, score * policy.Weight(ReasonCodes.Escalation),
                    $"'{grant.Privilege}' granted by {grant.GrantedBy} and used {hours:0.#} h later for {Describe(e)}: typical never done by this user and by {Numbers.Percent(peerShare)} of {peerCount} peers, actual {Numbers.N(e.RecordCount)} records",
                    peerShare, 1);
            }
            else if (!p.Learning && peerCount >= 5 && peerShare <= rules.FirstSeenMaxPeerShare && IsBusinessOrSensitive(e, policy))
            {
                var score = 45 + (20 * (1 - (peerShare / Math.Max(rules.FirstSeenMaxPeerShare, 1e-9)))) + (sensitive ? 10 : 0);
                BulkExportDetector.Add(signals, view, e, ReasonCodes.FirstSeenRare, score * policy.Weight(ReasonCodes.FirstSeenRare),
                    $"first {Describe(e)} for this user after {p.ActiveDaysBefore} active days: typical done by {Numbers.Percent(peerShare)} of {peerCount} peers ({view.Peers.Group}), actual {Numbers.N(e.RecordCount)} records",
                    peerShare, 1);
            }
        }

        ref readonly var today = ref b.Today;
        if (e.Action == AccessAction.Decrypt && e.Succeeded && today.Decrypted > p.DecryptThreshold)
        {
            var score = ScoreCurve.Over(today.Decrypted, p.DecryptThreshold, 55);
            BulkExportDetector.Add(signals, view, e, ReasonCodes.MassDecrypt, score * policy.Weight(ReasonCodes.MassDecrypt),
                $"sensitive values decrypted today: typical {Numbers.N(p.Decrypt.Median)}, actual {Numbers.N(today.Decrypted)} (highest day before: {Numbers.N(p.Decrypt.Max)})",
                p.Decrypt.Median, today.Decrypted);
        }

        if (view.IsAdmin && AccessActions.ReadsData(e.Action) && e.Succeeded && IsBusiness(e, policy) && today.AdminBusinessRead > p.AdminReadThreshold)
        {
            var score = ScoreCurve.Over(today.AdminBusinessRead, p.AdminReadThreshold, 50);
            BulkExportDetector.Add(signals, view, e, ReasonCodes.AdminDataAccess, score * policy.Weight(ReasonCodes.AdminDataAccess),
                $"administrator reading business data: typical {Numbers.N(p.AdminRead.Median)} records a day, actual {Numbers.N(today.AdminBusinessRead)} today ({e.Entity})",
                p.AdminRead.Median, today.AdminBusinessRead);
        }
    }

    private static readonly ConcurrentDictionary<(string Entity, AccessAction Action), string> Keys = new();

    /// <summary>The entity/action pair first-seen checks track; null for events that touch no entity.</summary>
    public static string? EntityActionKey(AccessEvent e) => e.Action switch
    {
        AccessAction.Login or AccessAction.LoginFailed or AccessAction.Logout => null,
        AccessAction.AdminChange or AccessAction.Impersonate => AccessActions.Name(e.Action),
        _ => e.Entity is null ? null : Key(e.Entity, e.Action),
    };

    private static string Key(string entity, AccessAction action)
    {
        if (Keys.TryGetValue((entity, action), out var key))
        {
            return key;
        }

        key = string.Concat(entity, ":", AccessActions.Name(action));
        // Entities are few; a flood of distinct ones is not cached, so the cache stays small.
        if (Keys.Count < 100_000)
        {
            Keys.TryAdd((entity, action), key);
        }

        return key;
    }

    public static bool IsRevoke(AccessEvent e) =>
        e.Details is { } details && details.StartsWith("revoke", StringComparison.OrdinalIgnoreCase);

    private static bool IsBusiness(AccessEvent e, ScoringPolicy policy) =>
        e.Entity is not null && (policy.BusinessEntities.Count == 0 || policy.BusinessEntities.Contains(e.Entity));

    private static bool IsBusinessOrSensitive(AccessEvent e, ScoringPolicy policy) =>
        e.Action is AccessAction.Impersonate or AccessAction.AdminChange || IsBusiness(e, policy) || policy.LimitFor(e.Entity) is not null;

    private static string Describe(AccessEvent e) => e.Action switch
    {
        AccessAction.AdminChange => "administrative change",
        AccessAction.Impersonate => "impersonation of another user",
        _ => $"{AccessActions.Name(e.Action)} of {e.Entity}",
    };
}
