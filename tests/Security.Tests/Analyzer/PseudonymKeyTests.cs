using System.Net;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Security.Tests.Support;
using static CrmSecurity.Security.Tests.Analyzer.AnalyzerCalls;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>
/// Red-team finding 3, the analyzer's part: the pseudonym key sat in the clear in <c>security.db</c>, so anyone holding
/// the file (or a backup) could compute every user's pseudonym and undo the pseudonymised review without a reveal. The
/// key is now stored wrapped by the installation's key-encryption key (the master key file, outside the database); a
/// key an older build stored in the clear is wrapped at start with the same value, so pseudonyms do not change.
/// </summary>
public sealed class PseudonymKeyTests(ReviewerHost host) : IClassFixture<ReviewerHost>
{
    [Fact]
    public async Task A_reader_of_the_database_file_cannot_compute_a_users_pseudonym()
    {
        var frank = await Personas.UserIdAsync(host, "frank");
        var id = await host.FindingAboutAsync(frank, "frank-key");
        var (status, detail) = await GetAsync(host, await host.ReviewTokenAsync("carol"), $"analyzer/review/findings/{id}");
        Assert.True(status == HttpStatusCode.OK, $"{status} {detail}");
        var pseudonym = detail.GetProperty("user").GetString()!;

        // Everything the database file holds about the key, tried every way it could be used as one.
        var stored = (string)Assert.Single(await host.QueryAsync("SELECT value FROM analyzer_review_settings WHERE key = 'pseudonym_key'"))["value"]!;
        var candidates = new List<byte[]> { Encoding.UTF8.GetBytes(stored) };
        candidates.AddRange(stored.Split(':').Select(TryBase64).OfType<byte[]>());

        Assert.StartsWith("kwp1:", stored, StringComparison.Ordinal);
        Assert.All(candidates, candidate => Assert.NotEqual(pseudonym, Pseudonym(candidate, frank)));
    }

    [Fact]
    public async Task A_key_an_older_build_stored_in_the_clear_is_wrapped_at_start_and_pseudonyms_stay_the_same()
    {
        // As an older build left it: the key in the clear (base64), known here so the test can compute pseudonyms with it.
        // The key is made at first use, so this test (whichever order the class runs in) shows one finding first. Its
        // tokens are not the class's cached ones: the restarted host listens on a new port, so its issuer differs.
        var key = RandomNumberGenerator.GetBytes(32);
        var frank = await Personas.UserIdAsync(host, "frank");
        var before = await TryUserTokenAsync(host, "carol", "openid findings:read", ReviewerHost.Client, ReviewerHost.Secret, ReviewerHost.Redirect);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, before!, $"analyzer/review/findings/{await host.FindingAboutAsync(frank, "frank-before")}")).Item1);
        await host.StopAsync();
        int replaced;
        try
        {
            replaced = await host.ExecuteAsync("UPDATE analyzer_review_settings SET value = $v WHERE key = 'pseudonym_key'", ("$v", Convert.ToBase64String(key)));
        }
        finally
        {
            await host.InitializeAsync();
        }

        Assert.Equal(1, replaced);

        var stored = (string)Assert.Single(await host.QueryAsync("SELECT value FROM analyzer_review_settings WHERE key = 'pseudonym_key'"))["value"]!;
        var dave = await Personas.UserIdAsync(host, "dave");
        var id = await host.FindingAboutAsync(dave, "dave-key", daysAgo: 2);
        var carol = await TryUserTokenAsync(host, "carol", "openid findings:read", ReviewerHost.Client, ReviewerHost.Secret, ReviewerHost.Redirect);
        var (status, detail) = await GetAsync(host, carol!, $"analyzer/review/findings/{id}");

        Assert.StartsWith("kwp1:", stored, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToBase64String(key), stored, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(Pseudonym(key, dave), detail.GetProperty("user").GetString());
    }

    /// <summary>The pseudonym as docs/audit-analyzer.md ("Reviewing findings") defines it: <c>user-</c> and 8 hex digits of HMAC-SHA-256 of the user id.</summary>
    private static string Pseudonym(byte[] key, string userId) =>
        "user-" + Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(userId)).AsSpan(0, 4));

    private static byte[]? TryBase64(string text)
    {
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
