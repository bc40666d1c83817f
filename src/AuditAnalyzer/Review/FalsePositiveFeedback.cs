using System.Globalization;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>
/// Feedback from dismissals as false positive: each earlier one for the same user and detector multiplies a later
/// finding's score by <see cref="ReviewOptions.FalsePositiveFactor"/>, never below <see cref="ReviewOptions.FalsePositiveFloor"/>
/// of the original score, so a noisy pattern quietens for that user without being switched off.
/// </summary>
internal static class FalsePositiveFeedback
{
    public const string ReasonCode = "feedback.false_positive";

    /// <summary>The multiplier for <paramref name="earlier"/> false positives.</summary>
    public static double Factor(int earlier, double factor, double floor) =>
        earlier <= 0 ? 1 : Math.Max(floor, Math.Pow(factor, earlier));

    public static string Text(int earlier) => string.Create(CultureInfo.InvariantCulture,
        $"score lowered: {earlier} earlier false positive{(earlier == 1 ? "" : "s")} for this user and detector");

    /// <summary>The finding with its score lowered and a reason saying why, or unchanged without earlier false positives.</summary>
    public static Finding Apply(Finding finding, int earlier, double factor, double floor, ScoringPolicy policy)
    {
        if (earlier <= 0)
        {
            return finding;
        }

        var score = Math.Floor(finding.Score * Factor(earlier, factor, floor));
        return finding with
        {
            Score = score,
            Severity = policy.SeverityOf(score),
            Reasons = [.. finding.Reasons, new Reason(ReasonCode, 0, Text(earlier), null, null)],
        };
    }
}
