using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>The <c>mass_delete</c> section of the policy.</summary>
internal sealed record MassDeletePolicy
{
    /// <summary>Records deleted in one day below which nothing is said.</summary>
    public double MinRecords { get; init; } = 30;

    /// <summary>And above this many times the most the user ever deleted in a day.</summary>
    public double OverHistoryMax { get; init; } = 3;

    /// <summary>Reads the policy file's section, each problem named with file, line and setting.</summary>
    internal static MassDeletePolicy Read(PolicySection s)
    {
        var d = new MassDeletePolicy();
        var result = new MassDeletePolicy
        {
            MinRecords = s.Number("min_records", d.MinRecords, 1, 10_000_000),
            OverHistoryMax = s.Number("over_history_max", d.OverHistoryMax, 1, 100),
        };
        s.RejectUnknown();
        return result;
    }
}
