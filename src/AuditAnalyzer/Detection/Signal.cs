using CrmSecurity.AuditAnalyzer.Findings;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>The detectors, as named in findings.</summary>
internal static class Detectors
{
    public const string BulkExport = "bulk_export";
    public const string OddHours = "odd_hours";
    public const string PrivilegeMisuse = "privilege_misuse";
}

/// <summary>Stable reason codes: what evaluation, weights in the policy and suppressions refer to.</summary>
internal static class ReasonCodes
{
    public const string OwnHistory = "bulk_export.own_history";
    public const string PeerHistory = "bulk_export.peers";
    public const string SensitiveLimit = "bulk_export.sensitive_limit";
    public const string Cumulative7 = "bulk_export.cumulative_7d";
    public const string Cumulative30 = "bulk_export.cumulative_30d";
    public const string RareHour = "odd_hours.rare_hour";
    public const string Escalation = "privilege_misuse.escalation";
    public const string SelfGrant = "privilege_misuse.self_grant";
    public const string AdminDataAccess = "privilege_misuse.admin_data_access";
    public const string FirstSeenRare = "privilege_misuse.first_seen_rare";
    public const string MassDecrypt = "privilege_misuse.mass_decrypt";
    public const string Dormant = "privilege_misuse.dormant_reactivated";
    public const string AfterTermination = "privilege_misuse.after_termination";

    public static readonly IReadOnlyList<string> All =
    [
        OwnHistory, PeerHistory, SensitiveLimit, Cumulative7, Cumulative30, RareHour, Escalation, SelfGrant,
        AdminDataAccess, FirstSeenRare, MassDecrypt, Dormant, AfterTermination,
    ];

    public static string DetectorOf(string code) => code[..code.IndexOf('.', StringComparison.Ordinal)];
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
