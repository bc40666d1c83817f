using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>The <c>departure</c> section of the policy.</summary>
internal sealed record DeparturePolicy
{
    /// <summary>How many days before a known termination date exports are judged against the user's own normal.</summary>
    public int WatchDays { get; init; } = 45;

    /// <summary>The rolling window (days, at most 30) whose exports are added up.</summary>
    public int RollingDays { get; init; } = 14;

    /// <summary>Exports over the rolling window this many times the user's own normal for as many active days are a finding.</summary>
    public double OverOwnNormal { get; init; } = 2.5;

    /// <summary>And above this many times the highest total of as many consecutive active days in the user's history (they have done it before).</summary>
    public double OverHistoryMax { get; init; } = 1.5;

    /// <summary>Below this many records in the window nothing is said, however small the normal.</summary>
    public double MinRecords { get; init; } = 100;

    /// <summary>Reads the policy file's section, each problem named with file, line and setting.</summary>
    internal static DeparturePolicy Read(PolicySection s)
    {
        var d = new DeparturePolicy();
        var result = new DeparturePolicy
        {
            WatchDays = s.Integer("watch_days", d.WatchDays, 1, 365),
            RollingDays = s.Integer("rolling_days", d.RollingDays, 1, Baselines.UserBaseline.RecentDays),
            OverOwnNormal = s.Number("over_own_normal", d.OverOwnNormal, 1, 100),
            OverHistoryMax = s.Number("over_history_max", d.OverHistoryMax, 1, 100),
            MinRecords = s.Number("min_records", d.MinRecords, 0, 10_000_000),
        };
        s.RejectUnknown();
        return result;
    }
}
