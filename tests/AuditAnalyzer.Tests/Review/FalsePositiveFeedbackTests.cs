using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Review;

namespace CrmSecurity.AuditAnalyzer.Tests.Review;

public sealed class FalsePositiveFeedbackTests
{
    private static readonly ScoringPolicy Policy = ScoringPolicy.Default();

    private static Finding Finding(double score) => new()
    {
        Id = "f1",
        UserId = "u1",
        Detector = "odd_hours",
        Detectors = ["odd_hours"],
        Score = score,
        Severity = Policy.SeverityOf(score),
        WindowStart = DateTimeOffset.UnixEpoch,
        WindowEnd = DateTimeOffset.UnixEpoch.AddHours(1),
        DetectedAt = DateTimeOffset.UnixEpoch,
        Reasons = [new Reason("odd_hours.rare_hour", score, "active at 03:00", 0.01, 1)],
        EventIds = ["e1"],
    };

    [Fact]
    public void Each_earlier_false_positive_multiplies_the_score_and_says_so()
    {
        var damped = FalsePositiveFeedback.Apply(Finding(80), 2, 0.7, 0.3, Policy);

        Assert.Equal(39, damped.Score); // 80 x 0.7 x 0.7 = 39.2, held whole (rounded down) as shown
        Assert.Equal(Policy.SeverityOf(39), damped.Severity);
        Assert.Equal("score lowered: 2 earlier false positives for this user and detector", damped.Reasons[^1].Text);
        Assert.Equal("active at 03:00", damped.Reasons[0].Text);
    }

    [Fact]
    public void Feedback_never_goes_below_the_floor()
    {
        Assert.Equal(24, FalsePositiveFeedback.Apply(Finding(80), 10, 0.7, 0.3, Policy).Score, 1);
    }

    [Fact]
    public void Without_earlier_false_positives_the_finding_is_unchanged()
    {
        var finding = Finding(80);

        Assert.Same(finding, FalsePositiveFeedback.Apply(finding, 0, 0.7, 0.3, Policy));
    }

    [Theory]
    [InlineData(0, 0.3, "FalsePositiveFactor")]
    [InlineData(1.5, 0.3, "FalsePositiveFactor")]
    [InlineData(0.7, -0.1, "FalsePositiveFloor")]
    public void Bad_feedback_settings_are_refused_at_start_naming_the_setting(double factor, double floor, string setting)
    {
        var result = new ReviewOptionsValidator().Validate(null, new ReviewOptions { FalsePositiveFactor = factor, FalsePositiveFloor = floor });

        Assert.True(result.Failed);
        Assert.Contains($"AuditAnalyzer:Review:{setting}", result.FailureMessage, StringComparison.Ordinal);
    }
}
