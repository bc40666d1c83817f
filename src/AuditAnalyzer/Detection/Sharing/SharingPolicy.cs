using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>The <c>sharing</c> section of the policy.</summary>
internal sealed record SharingPolicy
{
    /// <summary>Records shared or reassigned outside the user's unit (or to new accounts) in one day below which nothing is said.</summary>
    public double MinRecords { get; init; } = 20;

    /// <summary>And above this many times the most the user ever shared outside in a day.</summary>
    public double OverHistoryMax { get; init; } = 3;

    /// <summary>A principal hired this many days ago or less (or unknown to the directory) is a new account.</summary>
    public int NewAccountDays { get; init; } = 30;

    /// <summary>Reads the policy file's section, each problem named with file, line and setting.</summary>
    internal static SharingPolicy Read(PolicySection s)
    {
        var d = new SharingPolicy();
        var result = new SharingPolicy
        {
            MinRecords = s.Number("min_records", d.MinRecords, 1, 10_000_000),
            OverHistoryMax = s.Number("over_history_max", d.OverHistoryMax, 1, 100),
            NewAccountDays = s.Integer("new_account_days", d.NewAccountDays, 0, 3650),
        };
        s.RejectUnknown();
        return result;
    }
}
