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
        Assert.Equal(matches, SuppressionMatcher.Matches(Suppression("s", kind, value, long.MaxValue), Finding));
    }

    [Fact]
    public void A_group_suppression_never_matches_a_finding_without_a_known_group()
    {
        Assert.False(SuppressionMatcher.Matches(Suppression("s", "group", "sales", long.MaxValue), Finding with { PeerGroup = null }));
    }

    [Fact]
    public void Expired_and_revoked_suppressions_stop_applying()
    {
        var expired = Suppression("expired", "user", "u-42", Now);
        var revoked = Suppression("revoked", "user", "u-42", Now + 10, revoked: Now - 1);
        var live = Suppression("live", "user", "u-42", Now + 1);

        Assert.Null(SuppressionMatcher.FirstMatch([expired, revoked], Finding, Now));
        Assert.Equal("live", SuppressionMatcher.FirstMatch([expired, revoked, live], Finding, Now)?.Id);
    }

    [Theory]
    [InlineData("u-42", "reviewer")]
    [InlineData("reviewer", "u-42")]
    public void A_suppression_never_covers_the_reviewer_who_made_it_or_its_owner(string createdBy, string owner)
    {
        var wide = new ActiveSuppression("wide", "detector", "bulk_export", long.MaxValue, null, createdBy, owner);

        Assert.False(SuppressionMatcher.Matches(wide, Finding));
        Assert.True(SuppressionMatcher.Matches(wide, Finding with { UserId = "someone-else" }));
    }

    [Fact]
    public void A_suppression_ends_at_the_lifetime_cap_even_when_it_asked_for_longer()
    {
        var created = DateTimeOffset.UnixEpoch.UtcTicks;
        var year9999 = DateTimeOffset.MaxValue.UtcTicks;

        Assert.Equal(created + TimeSpan.FromDays(90).Ticks, SuppressionMatcher.EndOf(created, year9999, TimeSpan.FromDays(90)));
        Assert.Equal(created + TimeSpan.FromDays(90).Ticks, SuppressionMatcher.EndOf(created, null, TimeSpan.FromDays(90)));
        Assert.Equal(created + 5, SuppressionMatcher.EndOf(created, created + 5, TimeSpan.FromDays(90)));
    }

    private static ActiveSuppression Suppression(string id, string kind, string value, long end, long? revoked = null) =>
        new(id, kind, value, end, revoked, "reviewer", "reviewer");
}
