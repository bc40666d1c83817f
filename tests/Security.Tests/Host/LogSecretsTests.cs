using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using CrmSecurity.Crypto.Keys.Insecure;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Security.Tests.Identity;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Host;

/// <summary>
/// The log reader (SECURITY.md): whoever reads the service's log stream (an operator, a log pipeline, a SIEM) learns no
/// secret from it. The real executable runs at the most verbose level (Serilog <c>Verbose</c>, framework categories
/// included) while people and CRM apps do everything that handles a secret: password sign-in (a right and a wrong
/// password), enrolling an authenticator, client credentials, refresh, a password-reset mail, encrypt and decrypt through
/// the encryption service. None of those secrets, tokens or decrypted values may appear in what the process printed
/// (OWASP ASVS 4.0.3 V7.1.1, V7.1.2, V8.3.5).
/// </summary>
public sealed partial class LogSecretsTests : IAsyncLifetime
{
    private const string ClientSecret = "log-canary-client-secret-7f3a9c";
    private const string WrongPassword = "Wrong-Password-Canary-8841";
    private const string Plaintext = "+44 20 7946 0558";
    private const string MobileRedirect = "http://localhost:5092/callback";
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-security-logs-").FullName;
    private ServerProcess? _server;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        var masterKey = Path.Combine(_directory, "master.key");
        var keyring = Path.Combine(_directory, "keyring.json");
        using (var kek = LocalMasterKey.Generate())
        {
            await File.WriteAllTextAsync(masterKey, InsecureCleartextKeyMaterial.ExportBase64(kek), Cancel);
            using var ring = Keyring.CreateNew();
            ring.Save(keyring, kek);
        }

        _server = await ServerProcess.StartAsync(new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Identity__AllowHttp"] = "true",
            ["Identity__DemoMode"] = "true",
            ["Identity__MailPickupDirectory"] = Path.Combine(_directory, "mail"),
            ["Modules__Crypto__Enabled"] = "true",
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = masterKey,
            ["Crypto__KeyringPath"] = keyring,
            ["Crypto__AccessEventLog"] = Path.Combine(_directory, "crypto-access-events.jsonl"),
            ["Crypto__Columns__0__Table"] = "contact",
            ["Crypto__Columns__0__Column"] = "phone",
            // The CRM back end stores encrypted values; a mobile app (public client) decrypts for the signed-in user.
            ["Identity__Clients__0__ClientId"] = "log-backend",
            ["Identity__Clients__0__ClientSecret"] = ClientSecret,
            ["Identity__Clients__0__GrantTypes__0"] = "client_credentials",
            ["Identity__Clients__0__Scopes__0"] = "crypto:encrypt",
            ["Identity__Clients__0__Tenants__0"] = "demo",
            ["Identity__Clients__1__ClientId"] = "log-mobile",
            ["Identity__Clients__1__FirstParty"] = "true",
            ["Identity__Clients__1__GrantTypes__0"] = "authorization_code",
            ["Identity__Clients__1__Scopes__0"] = "openid",
            ["Identity__Clients__1__Scopes__1"] = "crypto:decrypt",
            ["Identity__Clients__1__Tenants__0"] = "demo",
            ["Identity__Clients__1__RedirectUris__0"] = MobileRedirect,
            ["AuditAnalyzer__DemoHistory__Enabled"] = "false",
            ["Serilog__MinimumLevel__Default"] = "Verbose",
            // Every category the shipped appsettings.json quiets, at the most verbose level too.
            ["Serilog__MinimumLevel__Override__Microsoft.AspNetCore"] = "Verbose",
            ["Serilog__MinimumLevel__Override__Microsoft.EntityFrameworkCore"] = "Verbose",
            ["Serilog__MinimumLevel__Override__OpenIddict"] = "Verbose",
            ["Serilog__MinimumLevel__Override__System.Net.Http.HttpClient"] = "Verbose",
        }, workingDirectory: _directory, cancellationToken: Cancel);
    }

    [Fact]
    public async Task At_the_most_verbose_level_no_password_secret_token_key_or_decrypted_value_reaches_the_log()
    {
        var server = _server!;
        var secrets = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["alice's password"] = Personas.Passwords["alice"],
            ["a wrong password"] = WrongPassword,
            ["the client secret"] = ClientSecret,
            ["the demo client's secret"] = Personas.ClientSecrets["demo-crm"],
            ["the decrypted value"] = Plaintext,
        };

        // A wrong password, then the right one through the whole code flow (code, access, refresh and ID token).
        using (var http = Browser(server))
        {
            await OAuthFlows.SubmitLoginAsync(http, "/account", "alice", WrongPassword);
            var tokens = await OAuthFlows.SignInAsync(http, "alice", Personas.Passwords["alice"]);
            secrets["alice's access token"] = Signature(tokens.GetProperty("access_token").GetString()!);
            secrets["alice's ID token"] = Signature(tokens.GetProperty("id_token").GetString()!);
            secrets["alice's refresh token"] = tokens.GetProperty("refresh_token").GetString()!;
            var (refreshed, body) = await OAuthFlows.RefreshAsync(http, tokens.GetProperty("refresh_token").GetString()!);
            Assert.True(refreshed == HttpStatusCode.OK, $"refresh: {refreshed} {body}");
            secrets["the refreshed access token"] = Signature(body.GetProperty("access_token").GetString()!);
            using var userInfo = new HttpRequestMessage(HttpMethod.Get, "connect/userinfo");
            userInfo.Headers.Authorization = new AuthenticationHeaderValue("Bearer", body.GetProperty("access_token").GetString());
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(userInfo, Cancel)).StatusCode);
        }

        // Enrolling an authenticator: the key the page shows and the recovery codes shown once.
        using (var http = Browser(server))
        {
            var enrolment = await AccountBrowser.EnrolAuthenticatorAsync(http, "bob");
            secrets["bob's authenticator key"] = enrolment.Key;
            secrets["bob's authenticator key as shown"] = enrolment.PageKeyText;
            secrets["a recovery code of bob's"] = enrolment.RecoveryCodes[0];
        }

        // A password-reset mail: the token in its link.
        using (var http = Browser(server))
        {
            await AccountBrowser.PostFormAsync(http, "account/forgot-password", "account/forgot-password", new Dictionary<string, string> { ["Email"] = "frank@demo.example" });
            secrets["frank's reset token"] = await ResetTokenAsync("frank@demo.example");
        }

        // The CRM back end encrypts a Finance contact's phone number; erin (support: organization-wide read, read_unmasked
        // on phone numbers) decrypts it through the mobile app with her own token.
        using (var http = Browser(server))
        {
            var (status, body) = await OAuthFlows.PostFormAsync(http, "connect/token",
                new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "crypto:encrypt" }, ("log-backend", ClientSecret));
            Assert.True(status == HttpStatusCode.OK, $"client credentials: {status} {body}");
            secrets["the back end's access token"] = Signature(body.GetProperty("access_token").GetString()!);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", body.GetProperty("access_token").GetString());
            using var encrypted = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "demo", table = "contact", column = "phone", rowId = "log-row-1", plaintext = Plaintext }, Cancel);
            Assert.True(encrypted.StatusCode == HttpStatusCode.OK, $"encrypt: {encrypted.StatusCode} {await encrypted.Content.ReadAsStringAsync(Cancel)}");
            var ciphertext = (await encrypted.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("ciphertext").GetString();

            using var phone = Browser(server);
            var erin = await OAuthFlows.SignInAsync(phone, "erin", Personas.Passwords["erin"], "openid crypto:decrypt", "log-mobile", secret: null, MobileRedirect);
            secrets["erin's password"] = Personas.Passwords["erin"];
            secrets["erin's access token"] = Signature(erin.GetProperty("access_token").GetString()!);
            phone.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", erin.GetProperty("access_token").GetString());
            using var decrypted = await phone.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "demo", table = "contact", column = "phone", rowId = "log-row-1", ciphertext }, Cancel);
            Assert.True(decrypted.StatusCode == HttpStatusCode.OK, $"decrypt: {decrypted.StatusCode} {await decrypted.Content.ReadAsStringAsync(Cancel)}");
            Assert.Equal(Plaintext, (await decrypted.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("plaintext").GetString());
        }

        // Batched writers (access events, the analyzer) flush off the request path: give them a moment before reading.
        await Task.Delay(TimeSpan.FromSeconds(2), Cancel);
        // From the moment the service listens: demo mode prints the demo people's published passwords and the demo
        // clients' secrets before that, on purpose (docs/identity.md, "Try it").
        var output = server.Output;
        var log = output[output.IndexOf("CRM security service listening on", StringComparison.Ordinal)..];

        // The most verbose entries were written (else the assertions below prove little), and the requests were logged.
        Assert.Contains("\"@l\":\"Verbose\"", log, StringComparison.Ordinal);
        Assert.Contains("/connect/token", log, StringComparison.Ordinal);
        Assert.Contains("/crypto/v1/decrypt", log, StringComparison.Ordinal);
        foreach (var (what, secret) in secrets)
        {
            var at = log.IndexOf(secret, StringComparison.Ordinal);
            Assert.True(at < 0, at < 0 ? "" : $"{what} is in the log, in: {Around(log, at, secret.Length)}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        await TestDirectories.DeleteAsync(_directory);
    }

    private static HttpClient Browser(ServerProcess server) => new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() })
    {
        BaseAddress = server.BaseAddress,
    };

    /// <summary>The log entry around a leaked secret, the secret itself blanked, so the failure says who wrote it.</summary>
    private static string Around(string log, int at, int length)
    {
        var start = Math.Max(0, log.LastIndexOf('\n', at) + 1);
        var end = log.IndexOf('\n', at);
        var line = log[start..(end < 0 ? log.Length : end)];
        return line.Replace(log.Substring(at, length), "[the secret]", StringComparison.Ordinal)[..Math.Min(line.Length, 1500)];
    }

    /// <summary>A JWT's signature: what makes it a credential (its header and claims are not secret).</summary>
    private static string Signature(string jwt) => jwt.Split('.')[2];

    private async Task<string> ResetTokenAsync(string address)
    {
        foreach (var file in Directory.GetFiles(Path.Combine(_directory, "mail")))
        {
            var text = await File.ReadAllTextAsync(file, Cancel);
            if (text.Contains("To: " + address, StringComparison.OrdinalIgnoreCase) && ResetToken().Match(text) is { Success: true } match)
            {
                return Uri.UnescapeDataString(match.Groups["token"].Value);
            }
        }

        throw new InvalidOperationException($"No reset mail to {address}.");
    }

    [GeneratedRegex(@"reset-password\?[^\s""]*token=(?<token>[^&\s""]+)")]
    private static partial Regex ResetToken();
}
