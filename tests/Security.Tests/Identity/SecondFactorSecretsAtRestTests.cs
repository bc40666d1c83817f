using System.Net;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Identity.AccountBrowser;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>
/// Red-team finding 3, second factors: TOTP secrets and recovery codes were in clear in <c>security.db</c>, so whoever
/// held a copy of the file could pass anyone's second step. Authenticator keys are now encrypted (AES-256-GCM, bound to
/// the user) and recovery codes kept as keyed digests, both under keys that exist only wrapped by the installation's
/// master key, which is not in the database. A database from an older build is converted at start and keeps working.
/// </summary>
public sealed class SecondFactorSecretsAtRestTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    private const string Provider = "[AspNetUserStore]";

    [Fact]
    public async Task A_reader_of_the_database_file_finds_neither_the_authenticator_key_the_page_showed_nor_any_recovery_code()
    {
        using var http = host.CreateClient();
        var enrolment = await EnrolAuthenticatorAsync(http, "dave");

        // The key works: it is what an authenticator app needs to pass dave's second step.
        using var browser = host.CreateClient();
        await SignInAsync(browser, "dave");
        Assert.Equal(HttpStatusCode.Redirect, (await SecondFactorAsync(browser, Totp.Code(enrolment.Key, DateTimeOffset.UtcNow))).StatusCode);

        var file = await DatabaseTextAsync();
        Assert.DoesNotContain(enrolment.Key, file, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(enrolment.PageKeyText, file, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Convert.ToBase64String(Totp.Base32(enrolment.Key)), file, StringComparison.Ordinal);
        foreach (var code in enrolment.RecoveryCodes)
        {
            Assert.DoesNotContain(code, file, StringComparison.OrdinalIgnoreCase);
        }

        // The keys that protect them are themselves only stored wrapped by the master key (kwp1:<kek>:...).
        var secrets = await host.QueryAsync("SELECT Name, Value FROM identity_secrets");
        Assert.NotEmpty(secrets);
        Assert.All(secrets, row => Assert.StartsWith("kwp1:", (string)row["Value"]!, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_user_enrolled_by_an_older_build_keeps_signing_in_with_the_same_authenticator_and_remaining_codes()
    {
        // What an older build stored for bob: the base32 key and the recovery codes themselves.
        var bob = await UserIdAsync("bob");
        var key = Totp.Base32(RandomNumberGenerator.GetBytes(20));
        string[] codes = ["7KQ2M-XR4PL", "9TZ3B-HW8NC", "4FJ6D-QS2VY"];
        await host.ExecuteAsync("UPDATE AspNetUsers SET TwoFactorEnabled = 1 WHERE Id = $id", ("$id", bob));
        await host.ExecuteAsync(
            "INSERT INTO AspNetUserTokens (UserId, LoginProvider, Name, Value) VALUES ($id, $p, 'AuthenticatorKey', $key), ($id, $p, 'RecoveryCodes', $codes)",
            ("$id", bob), ("$p", Provider), ("$key", key), ("$codes", string.Join(';', codes)));
        await host.StopAsync();
        await host.InitializeAsync();

        var stored = await host.QueryAsync("SELECT Name, Value FROM AspNetUserTokens WHERE UserId = $id AND LoginProvider = $p", ("$id", bob), ("$p", Provider));
        Assert.StartsWith("sb1:", (string)stored.Single(row => (string)row["Name"]! == "AuthenticatorKey")["Value"]!, StringComparison.Ordinal);
        Assert.StartsWith("rch1:", (string)stored.Single(row => (string)row["Name"]! == "RecoveryCodes")["Value"]!, StringComparison.Ordinal);
        var file = await DatabaseTextAsync();
        Assert.DoesNotContain(key, file, StringComparison.Ordinal);
        Assert.All(codes, code => Assert.DoesNotContain(code, file, StringComparison.Ordinal));

        using (var authenticator = host.CreateClient())
        {
            await SignInAsync(authenticator, "bob");
            Assert.Equal(HttpStatusCode.Redirect, (await SecondFactorAsync(authenticator, Totp.Code(key, DateTimeOffset.UtcNow))).StatusCode);
        }

        using (var recovery = host.CreateClient())
        {
            await SignInAsync(recovery, "bob");
            Assert.Equal(HttpStatusCode.Redirect, (await SecondFactorAsync(recovery, codes[1].ToLowerInvariant(), recovery: true)).StatusCode);
        }

        using var again = host.CreateClient();
        await SignInAsync(again, "bob");
        Assert.Equal(HttpStatusCode.OK, (await SecondFactorAsync(again, codes[1], recovery: true)).StatusCode); // used: refused
        var left = await host.QueryAsync("SELECT Value FROM AspNetUserTokens WHERE UserId = $id AND Name = 'RecoveryCodes'", ("$id", bob));
        Assert.Equal(2, ((string)left.Single()["Value"]!).Split(';').Length);
    }

    [Fact]
    public async Task A_recovery_code_posted_twice_at_once_signs_in_only_once()
    {
        using var owner = host.CreateClient();
        var enrolment = await EnrolAuthenticatorAsync(owner, "ed");

        using var first = host.CreateClient();
        using var second = host.CreateClient();
        await SignInAsync(first, "ed");
        await SignInAsync(second, "ed");
        var answers = await Task.WhenAll(
            SecondFactorAsync(first, enrolment.RecoveryCodes[0], recovery: true),
            SecondFactorAsync(second, enrolment.RecoveryCodes[0], recovery: true));

        Assert.Single(answers, answer => answer.StatusCode == HttpStatusCode.Redirect);
    }

    [Fact]
    public async Task A_database_writer_who_copies_their_own_sealed_key_into_a_victims_row_cannot_pass_the_victims_second_step()
    {
        using var mallory = host.CreateClient();
        var own = await EnrolAuthenticatorAsync(mallory, "erin");
        var erin = await UserIdAsync("erin");
        var frank = await UserIdAsync("frank");

        await host.ExecuteAsync("UPDATE AspNetUsers SET TwoFactorEnabled = 1 WHERE Id = $id", ("$id", frank));
        await host.ExecuteAsync(
            "INSERT INTO AspNetUserTokens (UserId, LoginProvider, Name, Value) SELECT $frank, LoginProvider, Name, Value FROM AspNetUserTokens WHERE UserId = $erin AND Name = 'AuthenticatorKey'",
            ("$frank", frank), ("$erin", erin));

        using var attacker = host.CreateClient();
        await SignInAsync(attacker, "frank");
        Assert.Equal(HttpStatusCode.OK, (await SecondFactorAsync(attacker, Totp.Code(own.Key, DateTimeOffset.UtcNow))).StatusCode);
    }

    private async Task<string> UserIdAsync(string userName) =>
        (string)(await host.QueryAsync("SELECT Id FROM AspNetUsers WHERE UserName = $name", ("$name", userName))).Single()["Id"]!;

    /// <summary>The database file (and its journal, if any) as text, as someone holding a copy would search it.</summary>
    private async Task<string> DatabaseTextAsync()
    {
        var text = new StringBuilder();
        foreach (var path in new[] { host.DatabasePath, host.DatabasePath + "-wal", host.DatabasePath + "-journal" }.Where(File.Exists))
        {
            await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var memory = new MemoryStream();
            await stream.CopyToAsync(memory, Personas.Cancel);
            text.Append(Encoding.Latin1.GetString(memory.ToArray()));
        }

        return text.ToString();
    }
}
