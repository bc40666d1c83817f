using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Mass sharing or reassignment: records shared (<c>share</c>) or reassigned (<c>assign</c>) in one day to principals
/// outside the user's business unit, or to new accounts (hired within <c>new_account_days</c>, or unknown to the
/// directory), far beyond what the user ever did: the way data leaves through the CRM's own permissions instead of an
/// export. Handing a leaver's accounts to a colleague of the same unit is not counted. Silent in learning mode.
/// </summary>
internal sealed class SharingDetector : IDetector
{
    public static SharingDetector Instance { get; } = new();

    public string Name => DetectorNames.Sharing;

    /// <summary>ECS event.category: access is being given away.</summary>
    public string EcsCategory => "iam";

    public IReadOnlyList<string> Codes { get; } = [ReasonCodes.MassSharing];

    /// <summary>True for a successful share or reassignment naming who receives it.</summary>
    public static bool IsHandOver(AccessEvent e) => e.Succeeded && e.Action is AccessAction.Share or AccessAction.Assign && e.TargetUser is not null;

    /// <summary>
    /// Why the principal is outside: another unit, a new account, or unknown; null when it is a colleague of the same
    /// unit (or when the user's own unit is not known, so "outside" cannot be said).
    /// </summary>
    public static string? Outside(DirectoryUser? user, DirectoryUser? principal, DateOnly day, SharingPolicy rules)
    {
        if (principal is null)
        {
            return "an account not in the directory";
        }

        if (principal.Hired is { } hired && day.DayNumber - hired.DayNumber <= rules.NewAccountDays)
        {
            return "a new account";
        }

        return user?.BusinessUnit is { } own && principal.BusinessUnit is { } theirs && !string.Equals(own, theirs, StringComparison.OrdinalIgnoreCase)
            ? "another business unit"
            : null;
    }

    /// <summary>Adds an outside hand-over to the day's counter; true when it counted (the event is then evidence).</summary>
    public static bool Accumulate(AccessEvent e, ref DayTotals today, DirectoryUser? user, DirectoryUser? principal, DateOnly day, SharingPolicy rules)
    {
        if (!IsHandOver(e) || Outside(user, principal, day, rules) is null)
        {
            return false;
        }

        today.Counters[DayCounters.SharedOutside] += e.RecordCount;
        return true;
    }

    public void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        if (!IsHandOver(e) || view.Profile.Learning)
        {
            return;
        }

        var rules = policy.Sharing;
        var actual = view.Baseline.Today.Counters[DayCounters.SharedOutside];
        var before = actual - e.RecordCount;
        var stats = view.Profile.Counter(DayCounters.SharedOutside);
        var threshold = Math.Max(rules.MinRecords, rules.OverHistoryMax * stats.Max);
        // Reported when this event crosses the threshold or grows the day by a quarter beyond it.
        if (actual <= threshold || (before > threshold && actual < before * 1.25))
        {
            return;
        }

        var score = ScoreCurve.Over(actual, threshold, 60) * policy.Weight(ReasonCodes.MassSharing);
        DetectorSignals.Add(signals, view, e, ReasonCodes.MassSharing, score,
            $"records shared or reassigned today to principals outside their business unit or to new accounts (this one to {e.TargetUser}): typical at most {Numbers.N(stats.Max)} a day, actual {Numbers.N(actual)}",
            stats.Max, actual);
    }
}

/// <summary>The detector's name in findings.</summary>
internal static partial class DetectorNames
{
    public const string Sharing = "sharing";
}

/// <summary>The detector's stable reason codes.</summary>
internal static partial class ReasonCodes
{
    public const string MassSharing = "sharing.outside_unit";
}
