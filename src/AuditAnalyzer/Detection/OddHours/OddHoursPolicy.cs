using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>The <c>odd_hours</c> section of the policy.</summary>
internal sealed record OddHoursPolicy
{
    /// <summary>An hour is rare when the user was active around it on less than this share of their active days.</summary>
    public double MaxShare { get; init; } = 0.02;

    /// <summary>Width (hours) of the smoothing over neighbouring hours of the week.</summary>
    public double KernelHours { get; init; } = 1.5;

    /// <summary>Odd-hour sign-in with no data touched scores at most this (low).</summary>
    public double LoginOnlyMaxScore { get; init; } = 30;

    /// <summary>Records touched at odd hours, in hours of the user's typical work, at which the data part of the score is half-way.</summary>
    public double HalfScoreHoursOfWork { get; init; } = 1;

    /// <summary>Reads the policy file's section, each problem named with file, line and setting.</summary>
    internal static OddHoursPolicy Read(PolicySection s)
    {
        var d = new OddHoursPolicy();
        var result = new OddHoursPolicy
        {
            MaxShare = s.Number("max_share", d.MaxShare, 0.0001, 0.5),
            KernelHours = s.Number("kernel_hours", d.KernelHours, 0.25, 6),
            LoginOnlyMaxScore = s.Number("login_only_max_score", d.LoginOnlyMaxScore, 0, 100),
            HalfScoreHoursOfWork = s.Number("half_score_hours_of_work", d.HalfScoreHoursOfWork, 0.01, 100),
        };
        s.RejectUnknown();
        return result;
    }
}
