using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// A detector: one folder under <c>Detection/</c> holding the detector, its policy section, its reason codes and its
/// SIEM category. It reads the user's view of one event (baselines, peers, directory, local time) and adds signals;
/// it keeps no state of its own, so the scorer, the baselines and the finding contract do not change for a new one.
/// </summary>
internal interface IDetector
{
    /// <summary>The name findings carry (<c>bulk_export</c>); the first part of each of its reason codes.</summary>
    string Name { get; }

    /// <summary>The ECS <c>event.category</c> its findings add to <c>intrusion_detection</c>.</summary>
    string EcsCategory { get; }

    /// <summary>Every reason code it can raise: what policy weights, suppressions and evaluation refer to.</summary>
    IReadOnlyList<string> Codes { get; }

    void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals);
}

/// <summary>The detectors the scorer runs, in this order. A new detector is one line here.</summary>
internal static class DetectorCatalog
{
    public static IReadOnlyList<IDetector> All { get; } =
    [
        BulkExportDetector.Instance,
        OddHoursDetector.Instance,
        PrivilegeMisuseDetector.Instance,
        DepartureDetector.Instance,
        SnoopingDetector.Instance,
        SharingDetector.Instance,
        MassDeleteDetector.Instance,
        TakeoverDetector.Instance,
    ];

    public static IDetector? Find(string name) => All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.Ordinal));
}

/// <summary>Stable reason codes: each detector's folder declares its own; together they are <see cref="All"/>.</summary>
internal static partial class ReasonCodes
{
    public static IReadOnlyList<string> All { get; } = [.. DetectorCatalog.All.SelectMany(d => d.Codes)];

    public static string DetectorOf(string code) => code[..code.IndexOf('.', StringComparison.Ordinal)];

    /// <summary>
    /// Reasons that mean the same on an installation's first day as on its thousandth, because they judge an event against
    /// a fact, not against anyone's history: activity after the termination date, a grant to oneself, a sensitive entity's
    /// fixed daily limit. Every other reason compares with a user's or a peer group's past and is held back while the
    /// organisation is still learning (<see cref="Policy.ScoringPolicy.OrganisationLearningDays"/>).
    /// </summary>
    public static IReadOnlySet<string> WithoutHistory { get; } = new HashSet<string>(StringComparer.Ordinal) { AfterTermination, SelfGrant, SensitiveLimit };
}

/// <summary>What a detector reports for one event: a reason with its score and the events behind it.</summary>
internal sealed record Signal(Reason Reason, DateTimeOffset Time, IReadOnlyList<string> Evidence, bool Learning);

/// <summary>Score shapes shared by the detectors, so that "how far past the threshold" means the same everywhere.</summary>
internal static class ScoreCurve
{
    /// <summary>
    /// 0 below the threshold; at the threshold <paramref name="floor"/>, rising towards 100 with the ratio
    /// actual/threshold on a log scale (x2 adds about a third of the remaining room, x10 about two thirds).
    /// </summary>
    public static double Over(double actual, double threshold, double floor = 50)
    {
        if (threshold <= 0 || actual < threshold)
        {
            return 0;
        }

        var ratio = actual / threshold;
        var rise = 1 - Math.Pow(ratio, -0.5);
        return Math.Min(100, floor + ((100 - floor) * rise));
    }

    /// <summary>Combines reasons into one finding score: the strongest reason, raised by each further independent reason (noisy-OR, halved).</summary>
    public static double Combine(IEnumerable<double> scores)
    {
        var ordered = scores.Where(s => s > 0).OrderDescending().ToList();
        if (ordered.Count == 0)
        {
            return 0;
        }

        var remaining = 1 - (ordered[0] / 100);
        for (var i = 1; i < ordered.Count; i++)
        {
            remaining *= 1 - (ordered[i] / 200);
        }

        return Math.Round(100 * (1 - remaining), 1);
    }
}
