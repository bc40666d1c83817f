using CrmSecurity.AuditAnalyzer.Review;

namespace CrmSecurity.AuditAnalyzer.Tests.Review;

public sealed class SuppressionMatcherTests
{
    private static readonly FindingFacts Finding = new("u-42", "Sales", "bulk_export", ["contact", "account"]);
    private const long Now = 1_000_000;

    [Theory]
    [InlineData("user", "u-42", true)]
    [InlineData("user", "u-43", false)]
    [InlineData("group", "sales", true)]
    [InlineData("group", "finance", false)]
    [InlineData("detector", "bulk_export", true)]
    [InlineData("detector", "odd_hours", false)]
    [InlineData("entity", "Contact", true)]
    [InlineData("entity", "invoice", false)]
    [InlineData("tenant", "u-42", false)]
    public void A_suppression_matches_on_its_scope_only(string kind, string value, bool matches)
    {
        Assert.Equal(matches, SuppressionMatcher.Matches(new ActiveSuppression("s", kind, value, null, null), Finding));
    }

    [Fact]
    public void A_group_suppression_never_matches_a_finding_without_a_known_group()
    {
        Assert.False(SuppressionMatcher.Matches(new ActiveSuppression("s", "group", "sales", null, null), Finding with { PeerGroup = null }));
    }

    [Fact]
    public void Expired_and_revoked_suppressions_stop_applying()
    {
        var expired = new ActiveSuppression("expired", "user", "u-42", Now, null);
        var revoked = new ActiveSuppression("revoked", "user", "u-42", Now + 10, Now - 1);
        var live = new ActiveSuppression("live", "user", "u-42", Now + 1, null);

        Assert.Null(SuppressionMatcher.FirstMatch([expired, revoked], Finding, Now));
        Assert.Equal("live", SuppressionMatcher.FirstMatch([expired, revoked, live], Finding, Now)?.Id);
    }
}
