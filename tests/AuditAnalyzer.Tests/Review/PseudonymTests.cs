using System.Text.RegularExpressions;
using CrmSecurity.AuditAnalyzer.Review;

namespace CrmSecurity.AuditAnalyzer.Tests.Review;

public sealed partial class PseudonymTests
{
    private static readonly byte[] KeyA = [.. Enumerable.Range(0, 32).Select(i => (byte)i)];
    private static readonly byte[] KeyB = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];

    [Fact]
    public void A_pseudonym_is_user_and_8_hex_digits_stable_per_key_and_hides_the_id()
    {
        var first = Pseudonyms.Of(KeyA, "alice");

        Assert.Matches(Shape(), first);
        Assert.Equal(first, Pseudonyms.Of(KeyA, "alice"));
        Assert.DoesNotContain("alice", first, StringComparison.Ordinal);
        Assert.True(Pseudonyms.LooksLikeOne(first));
    }

    [Fact]
    public void Different_users_and_different_installations_get_different_pseudonyms()
    {
        Assert.NotEqual(Pseudonyms.Of(KeyA, "alice"), Pseudonyms.Of(KeyA, "bob"));
        Assert.NotEqual(Pseudonyms.Of(KeyA, "alice"), Pseudonyms.Of(KeyB, "alice"));
    }

    [Theory]
    [InlineData("alice")]
    [InlineData("user-1234567")]
    [InlineData("user-ABCDEF12")]
    [InlineData("user-1234567g")]
    public void Only_the_pseudonym_shape_is_taken_for_one(string value)
    {
        Assert.False(Pseudonyms.LooksLikeOne(value));
    }

    [GeneratedRegex("^user-[0-9a-f]{8}$")]
    private static partial Regex Shape();
}
