using CrmSecurity.AuditAnalyzer.Review;

namespace CrmSecurity.AuditAnalyzer.Tests.Review;

public sealed class ReviewStateMachineTests
{
    [Theory]
    [InlineData("new", "acknowledged", null)]
    [InlineData("new", "confirmed", "true_positive")]
    [InlineData("new", "dismissed", "false_positive")]
    [InlineData("acknowledged", "confirmed", "benign_true_positive")]
    [InlineData("acknowledged", "dismissed", "benign_true_positive")]
    [InlineData("acknowledged", "resolved", "true_positive")]
    [InlineData("confirmed", "resolved", "true_positive")]
    [InlineData("suppressed", "acknowledged", null)]
    public void Allowed_steps_end_with_the_given_disposition(string from, string to, string? disposition)
    {
        var (chosen, refusal) = ReviewStateMachine.Check(from, to, null, disposition, null, "f1");

        Assert.Null(refusal);
        Assert.Equal(disposition, chosen);
    }

    [Theory]
    [InlineData("new", "resolved")]
    [InlineData("dismissed", "acknowledged")]
    [InlineData("resolved", "confirmed")]
    [InlineData("confirmed", "dismissed")]
    [InlineData("acknowledged", "acknowledged")]
    public void A_step_the_machine_does_not_allow_is_a_conflict_naming_from_and_to(string from, string to)
    {
        var (_, refusal) = ReviewStateMachine.Check(from, to, null, "true_positive", null, "f1");

        Assert.NotNull(refusal);
        Assert.True(refusal.Conflict);
        Assert.Contains($"from {from} to {to}", refusal.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dismissing_without_a_disposition_or_as_true_positive_is_refused_naming_the_field()
    {
        var (_, missing) = ReviewStateMachine.Check("new", "dismissed", null, null, null, "f1");
        var (_, wrong) = ReviewStateMachine.Check("new", "dismissed", null, "true_positive", null, "f1");

        Assert.Equal("disposition", missing?.Field);
        Assert.Equal("disposition", wrong?.Field);
        Assert.False(missing!.Conflict);
    }

    [Fact]
    public void A_duplicate_names_another_finding()
    {
        var (_, none) = ReviewStateMachine.Check("new", "dismissed", null, "duplicate", null, "f1");
        var (_, itself) = ReviewStateMachine.Check("new", "dismissed", null, "duplicate", "f1", "f1");
        var (chosen, ok) = ReviewStateMachine.Check("new", "dismissed", null, "duplicate", "f0", "f1");

        Assert.Equal("duplicate_of", none?.Field);
        Assert.Equal("duplicate_of", itself?.Field);
        Assert.Null(ok);
        Assert.Equal("duplicate", chosen);
    }

    [Fact]
    public void Resolving_a_confirmed_finding_keeps_its_disposition_and_confirming_needs_one()
    {
        var (kept, refusal) = ReviewStateMachine.Check("confirmed", "resolved", "benign_true_positive", null, null, "f1");
        var (_, confirmWithout) = ReviewStateMachine.Check("new", "confirmed", null, null, null, "f1");

        Assert.Null(refusal);
        Assert.Equal("benign_true_positive", kept);
        Assert.Equal("disposition", confirmWithout?.Field);
    }

    [Fact]
    public void An_unknown_status_or_disposition_is_bad_input_not_a_conflict()
    {
        var (_, status) = ReviewStateMachine.Check("new", "closed", null, null, null, "f1");
        var (_, disposition) = ReviewStateMachine.Check("new", "dismissed", null, "meh", null, "f1");

        Assert.Equal("status", status?.Field);
        Assert.False(status!.Conflict);
        Assert.Equal("disposition", disposition?.Field);
    }
}
