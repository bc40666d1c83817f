using System.Net;
using System.Text.Json;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Identity.AccountBrowser;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>The service as an operator configures it for a bank: a public origin, and the form throttles at low limits.</summary>
public sealed class PublicOriginHost : SecurityHost
{
    public const string Origin = "http://login.bank.test/";

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Issuer"] = Origin,
        ["Identity:Throttling:ForgotPasswordPerAddressPerHour"] = "3",
        ["Identity:Throttling:ForgotPasswordPerIpPerHour"] = "1000",
        ["Identity:Throttling:ResetPasswordPerUserPerMinute"] = "3",
        ["Identity:Throttling:ResetPasswordPerIpPerMinute"] = "1000",
        ["Identity:Throttling:TwoFactorPerUserPerMinute"] = "3",
        ["Identity:Throttling:TwoFactorPerIpPerMinute"] = "1000",
    };
}

/// <summary>
/// Red-team finding 1: account takeover through the password-reset link. A forgot-password request for dave's address
/// sent with <c>Host: attacker.example</c> mailed dave a genuine reset link to the attacker's host. Links, discovery and
/// the issuer now come from the configured public origin, whatever Host a request carries; the forms an attacker floods
/// or guesses are throttled; mail files are the service account's alone.
/// </summary>
public sealed class PasswordResetLinkTests(PublicOriginHost host) : IClassFixture<PublicOriginHost>
{
    private static Action<HttpRequestMessage> AttackerHost => request => request.Headers.Host = "attacker.example";

    [Fact]
    public async Task A_reset_asked_for_with_an_attackers_Host_header_mails_a_link_to_the_configured_origin()
    {
        using var http = host.CreateClient();
        var response = await PostFormAsync(http, "account/forgot-password", "account/forgot-password",
            new Dictionary<string, string> { ["Email"] = "dave@demo.example" }, AttackerHost);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var (_, link) = await ResetMailAsync(host, "dave@demo.example");
        Assert.StartsWith(PublicOriginHost.Origin + "account/reset-password?", link.AbsoluteUri, StringComparison.Ordinal);
        Assert.DoesNotContain("attacker.example", link.AbsoluteUri, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Discovery_and_the_tokens_iss_name_the_configured_origin_whatever_the_Host_header()
    {
        using var http = host.CreateClient();
        using var discovery = new HttpRequestMessage(HttpMethod.Get, ".well-known/openid-configuration");
        AttackerHost(discovery);
        using var answer = await http.SendAsync(discovery, Personas.Cancel);
        var document = JsonDocument.Parse(await answer.Content.ReadAsStringAsync(Personas.Cancel)).RootElement;

        Assert.Equal(PublicOriginHost.Origin, document.GetProperty("issuer").GetString());
        foreach (var endpoint in new[] { "authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint" })
        {
            Assert.StartsWith(PublicOriginHost.Origin, document.GetProperty(endpoint).GetString(), StringComparison.Ordinal);
        }

        using var tokenRequest = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["scope"] = "crm.api", ["client_id"] = "demo-crm", ["client_secret"] = Personas.ClientSecrets["demo-crm"],
            }),
        };
        AttackerHost(tokenRequest);
        using var token = await http.SendAsync(tokenRequest, Personas.Cancel);
        var accessToken = JsonDocument.Parse(await token.Content.ReadAsStringAsync(Personas.Cancel)).RootElement.GetProperty("access_token").GetString()!;
        Assert.Equal(PublicOriginHost.Origin, OAuthFlows.Payload(accessToken).GetProperty("iss").GetString());
    }

    [Fact]
    public async Task Forgot_password_is_throttled_per_address_with_the_same_answers_for_a_known_and_an_unknown_address()
    {
        using var http = host.CreateClient();
        var known = new List<HttpStatusCode>();
        var unknown = new List<HttpStatusCode>();
        foreach (var _ in Enumerable.Range(0, 4))
        {
            // The same address typed differently is the same address.
            known.Add((await PostFormAsync(http, "account/forgot-password", "account/forgot-password", new Dictionary<string, string> { ["Email"] = " Frank@Demo.Example " })).StatusCode);
            unknown.Add((await PostFormAsync(http, "account/forgot-password", "account/forgot-password", new Dictionary<string, string> { ["Email"] = "nobody-here@demo.example" })).StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], known);
        Assert.Equal(known, unknown);

        var refused = await PostFormAsync(http, "account/forgot-password", "account/forgot-password/", new Dictionary<string, string> { ["Email"] = "frank@demo.example" });
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode); // a trailing slash reaches the same page and the same budget
        Assert.True(refused.Headers.RetryAfter?.Delta > TimeSpan.Zero, "429 without a Retry-After");
    }

    [Fact]
    public async Task Reset_password_posts_are_throttled_per_user_the_link_names()
    {
        using var http = host.CreateClient();
        var userId = await Personas.UserIdAsync(host, "grace");
        var statuses = new List<HttpStatusCode>();
        foreach (var attempt in Enumerable.Range(0, 4))
        {
            var page = $"account/reset-password?user={userId}&token=guess-{attempt}";
            statuses.Add((await PostFormAsync(http, page, "account/reset-password", new Dictionary<string, string>
            {
                ["User"] = userId, ["Token"] = "guess-" + attempt, ["NewPassword"] = "taken-over-by-mallory-" + attempt,
            })).StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
    }

    [Fact]
    public async Task Second_factor_posts_are_throttled_per_user_however_many_sign_in_sessions_the_attacker_opens()
    {
        using (var owner = host.CreateClient())
        {
            await EnrolAuthenticatorAsync(owner, "erin");
        }

        var statuses = new List<HttpStatusCode>();
        foreach (var attempt in Enumerable.Range(0, 4))
        {
            // A fresh browser for each guess: the password step again, then one wrong code.
            using var attacker = host.CreateClient();
            Assert.StartsWith("/account/login-2fa", (await SignInAsync(attacker, "erin")).Headers.Location!.OriginalString, StringComparison.Ordinal);
            statuses.Add((await SecondFactorAsync(attacker, $"00000{attempt}")).StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_reset_mail_is_readable_by_the_service_account_only()
    {
        using var http = host.CreateClient();
        await PostFormAsync(http, "account/forgot-password", "account/forgot-password", new Dictionary<string, string> { ["Email"] = "carol@demo.example" });

        var (path, _) = await ResetMailAsync(host, "carol@demo.example");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(host.MailDirectory));
    }
}

/// <summary>Red-team finding 1, without a configured origin (Development, tests): the origin is the host's own listening address.</summary>
public sealed class PasswordResetLinkWithoutIssuerTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    [Fact]
    public async Task Without_a_configured_origin_the_link_points_at_the_hosts_own_address_not_the_Host_header()
    {
        using var http = host.CreateClient();
        await PostFormAsync(http, "account/forgot-password", "account/forgot-password",
            new Dictionary<string, string> { ["Email"] = "dave@demo.example" }, request => request.Headers.Host = "attacker.example");

        var (_, link) = await ResetMailAsync(host, "dave@demo.example");
        Assert.StartsWith(host.BaseAddress.AbsoluteUri + "account/reset-password?", link.AbsoluteUri, StringComparison.Ordinal);
        using var discovery = new HttpRequestMessage(HttpMethod.Get, ".well-known/openid-configuration");
        discovery.Headers.Host = "attacker.example";
        var issuer = JsonDocument.Parse(await (await http.SendAsync(discovery, Personas.Cancel)).Content.ReadAsStringAsync(Personas.Cancel)).RootElement.GetProperty("issuer").GetString();
        Assert.Equal(host.BaseAddress.AbsoluteUri, issuer);
    }
}

/// <summary>Red-team finding 1, at start-up: Production refuses to run without a public origin or with every Host allowed.</summary>
public sealed class PublicOriginStartupTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-security-origin-").FullName;

    [Fact]
    public async Task Production_without_an_issuer_and_with_every_Host_allowed_stops_with_78_naming_both_settings()
    {
        var environment = Production();
        environment["AllowedHosts"] = "*";

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, Personas.Cancel);

        Assert.Equal(78, exitCode);
        Assert.Contains("Identity:Issuer is required in Production", output, StringComparison.Ordinal);
        Assert.Contains("AllowedHosts is '*' in Production", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Production_with_an_issuer_but_no_AllowedHosts_stops_with_78_suggesting_the_issuers_host()
    {
        var environment = Production();
        environment["Identity__Issuer"] = "https://login.bank.example/";

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, Personas.Cancel);

        Assert.Equal(78, exitCode);
        Assert.Contains("AllowedHosts is not set in Production", output, StringComparison.Ordinal);
        Assert.Contains("login.bank.example", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Identity:Issuer is required", output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private Dictionary<string, string?> Production()
    {
        var key = Path.Combine(_directory, "master.key");
        File.WriteAllText(key, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        return new()
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = key,
            ["Modules__Crypto__Enabled"] = "false",
        };
    }
}
