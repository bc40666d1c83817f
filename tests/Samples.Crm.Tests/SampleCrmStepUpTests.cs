using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Samples.Crm.Tests;

/// <summary>
/// Issue 15, step-up from a CRM app: the sample next to the real service, both as processes. A user has an open finding
/// that (by the service's risk policy) obliges a step-up to a second factor before any allowed action. The sample's
/// pages go through AddCrmAuthorization's handler, so the user's password-only session is not enough: the sample sends
/// the user back to the service with <c>acr_values</c> for MFA, the user answers the authenticator's code, and only then
/// does the sample show the contacts.
/// </summary>
public sealed partial class SampleCrmStepUpTests : IAsyncLifetime
{
    private const string ClientId = "sample-crm-stepup";
    private const string ClientSecret = "sample-crm-stepup-secret-0123456789";
    private const string Password = "Ed-Sells-In-The-East-42";
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-sample-stepup.").FullName;
    private ServerProcess _service = null!;
    private SampleProcess _sample = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private string ServiceDatabase => Path.Combine(_directory, "service.db");

    public async ValueTask InitializeAsync()
    {
        // Every level of finding obliges a step-up here, so the test does not hang on which severity the analyzer gives.
        var policy = Path.Combine(_directory, "risk-access.json");
        await File.WriteAllTextAsync(policy, """
            { "medium": { "step_up": "mfa" }, "high": { "step_up": "mfa" }, "critical": { "step_up": "mfa" } }
            """, Cancel);
        var port = SampleProcess.FreePort();
        _service = await ServerProcess.StartAsync(new Dictionary<string, string?>
        {
            ["Identity__DemoMode"] = "true",
            ["Identity__AllowHttp"] = "true",
            ["Identity__RiskAccess__Policy"] = policy,
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={ServiceDatabase}",
            ["AuditAnalyzer__Live__PollInterval"] = "00:00:00.2",
            ["Identity__Clients__0__ClientId"] = ClientId,
            ["Identity__Clients__0__ClientSecret"] = ClientSecret,
            ["Identity__Clients__0__GrantTypes__0"] = "authorization_code",
            ["Identity__Clients__0__GrantTypes__1"] = "client_credentials",
            ["Identity__Clients__0__Scopes__0"] = "openid",
            ["Identity__Clients__0__Scopes__1"] = "profile",
            ["Identity__Clients__0__Scopes__2"] = "roles",
            ["Identity__Clients__0__Scopes__3"] = "authz.decide",
            ["Identity__Clients__0__Scopes__4"] = "events:write",
            ["Identity__Clients__0__Tenants__0"] = "demo",
            ["Identity__Clients__0__RedirectUris__0"] = $"http://127.0.0.1:{port}/signin-oidc",
        }, workingDirectory: _directory, cancellationToken: Cancel);
        _sample = await SampleProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["Crm:Service"] = _service.BaseAddress.AbsoluteUri.TrimEnd('/'),
            ["Crm:ClientId"] = ClientId,
            ["Crm:ClientSecret"] = ClientSecret,
            ["Crm:Scopes"] = "openid profile roles",
            ["Crm:DataDirectory"] = Path.Combine(_directory, "sample"),
            ["Crm:SeedContacts"] = "60",
            ["CRM_SAMPLE_MASTER_KEY"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
        }, Cancel);
    }

    public async ValueTask DisposeAsync()
    {
        await _sample.DisposeAsync();
        await _service.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task A_user_with_a_finding_that_obliges_step_up_sees_no_contact_until_the_sample_has_sent_him_back_for_his_second_factor()
    {
        using var ed = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = true }) { BaseAddress = _sample.BaseAddress };
        // ed signs in at the service with his password and turns on an authenticator: his session there is password-only.
        var key = await EnrolAuthenticatorAsync(ed);
        var edId = Scalar(Path.Combine(_directory, "sample", "crm.db"), "select Owner from contacts where OwnerName = 'ed' limit 1");
        await OpenFindingAboutAsync(edId);

        // The attack: the sample's own sign-in gets a password-only session (the service's session is one), and the model
        // allows ed to read his contacts; the sample must not act on that allow. It sends him back to the service for MFA.
        using var first = await ed.GetAsync("contacts", Cancel);
        var silent = Hidden().Matches(await first.Content.ReadAsStringAsync(Cancel)).ToDictionary(m => m.Groups[1].Value, m => WebUtility.HtmlDecode(m.Groups[2].Value));
        Assert.True(silent.ContainsKey("code"), $"expected the service to answer the sample's first sign-in at once, got {first.RequestMessage!.RequestUri}");
        using var silentCallback = new FormUrlEncodedContent(silent);
        using var challenged = await ed.PostAsync("signin-oidc", silentCallback, Cancel);
        var page = await challenged.Content.ReadAsStringAsync(Cancel);
        var at = challenged.RequestMessage!.RequestUri!;
        Assert.True(at.AbsolutePath == "/account/login-2fa", $"expected the service's second step, got {at}: {page[..Math.Min(300, page.Length)]}{Environment.NewLine}{_sample.Output}");
        var returnUrl = System.Web.HttpUtility.ParseQueryString(at.Query)["ReturnUrl"]!;
        // The stock handler pushes its parameters (RFC 9126), so acr_values is not in this URL; but neither this client,
        // nor its scopes, nor ed's role asks for a second factor (his first sign-in just now got a code without one):
        // only the sample's acr_values=urn:crm-security:acr:mfa makes the service ask for it.
        Assert.StartsWith("/connect/authorize?", returnUrl, StringComparison.Ordinal);
        Assert.Contains($"client_id={ClientId}", returnUrl, StringComparison.Ordinal);
        Assert.DoesNotContain("@example.com", page, StringComparison.Ordinal);
        var contactOfEd = Scalar(Path.Combine(_directory, "sample", "crm.db"), "select Id from contacts where OwnerName = 'ed' limit 1");
        using (var detail = await ed.GetAsync($"contacts/{contactOfEd}", Cancel))
        {
            Assert.Equal("/account/login-2fa", detail.RequestMessage!.RequestUri!.AbsolutePath); // every contact page, not only the list
        }

        // ed answers with his authenticator; the service sends a code with amr mfa and the sample lets him in.
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Code"] = Totp.Code(key, DateTimeOffset.UtcNow),
            ["ReturnUrl"] = returnUrl,
            ["__RequestVerificationToken"] = AntiForgery().Match(page).Groups[1].Value,
        });
        using var second = await ed.PostAsync(at, form, Cancel);
        var authorized = await second.Content.ReadAsStringAsync(Cancel);
        var fields = Hidden().Matches(authorized).ToDictionary(m => m.Groups[1].Value, m => WebUtility.HtmlDecode(m.Groups[2].Value));
        Assert.True(fields.ContainsKey("code"), $"no code after the second step: {authorized[..Math.Min(300, authorized.Length)]}");
        using var callback = new FormUrlEncodedContent(fields);
        using var contacts = await ed.PostAsync("signin-oidc", callback, Cancel);
        Assert.Equal(HttpStatusCode.OK, contacts.StatusCode);
        Assert.Equal("/contacts", contacts.RequestMessage!.RequestUri!.AbsolutePath);
        Assert.Contains("@example.com", await contacts.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
    }

    /// <summary>Signs in at the service's own login page and enables an authenticator app; returns its key.</summary>
    private async Task<string> EnrolAuthenticatorAsync(HttpClient http)
    {
        var service = _service.BaseAddress;
        var login = await http.GetStringAsync(new Uri(service, "account/login?ReturnUrl=%2Faccount"), Cancel);
        using var credentials = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Username"] = "ed",
            ["Password"] = Password,
            ["ReturnUrl"] = "/account",
            ["__RequestVerificationToken"] = AntiForgery().Match(login).Groups[1].Value,
        });
        using (var signedIn = await http.PostAsync(new Uri(service, "account/login"), credentials, Cancel))
        {
            Assert.Equal("/account", signedIn.RequestMessage!.RequestUri!.AbsolutePath);
        }

        var page = await http.GetStringAsync(new Uri(service, "account/two-factor"), Cancel);
        var key = SharedKey().Match(page).Groups[1].Value.Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant();
        Assert.NotEmpty(key);
        using var enable = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Code"] = Totp.Code(key, DateTimeOffset.UtcNow.AddSeconds(-30)),
            ["Password"] = Password,
            ["__RequestVerificationToken"] = AntiForgery().Match(page).Groups[1].Value,
        });
        using var enabled = await http.PostAsync(new Uri(service, "account/two-factor?handler=Enable"), enable, Cancel);
        Assert.Contains("Two-step verification is <strong>on</strong>", await enabled.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
        return key;
    }

    /// <summary>The sample's client reports a 48,000-contact export by the user at night; waits until the analyzer has a finding.</summary>
    private async Task OpenFindingAboutAsync(string userId)
    {
        using var http = new HttpClient { BaseAddress = _service.BaseAddress };
        using var tokenRequest = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "events:write" });
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{ClientId}:{ClientSecret}")));
        using var tokenResponse = await http.PostAsync("connect/token", tokenRequest, Cancel);
        var token = System.Text.Json.JsonDocument.Parse(await tokenResponse.Content.ReadAsStringAsync(Cancel)).RootElement.GetProperty("access_token").GetString();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

        var night = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(3);
        var lines = $$"""
            {"event_id":"stepup-1","timestamp":"{{night:yyyy-MM-ddTHH:mm:ssZ}}","user_id":"{{userId}}","action":"login","tenant":"demo"}
            {"event_id":"stepup-2","timestamp":"{{night.AddMinutes(4):yyyy-MM-ddTHH:mm:ssZ}}","user_id":"{{userId}}","action":"export","entity":"contact","record_count":48000,"tenant":"demo"}

            """;
        using var content = new StringContent(lines, System.Text.Encoding.UTF8, "application/x-ndjson");
        using var posted = await http.PostAsync("analyzer/events", content, Cancel);
        Assert.True(posted.IsSuccessStatusCode, $"events refused: {(int)posted.StatusCode} {await posted.Content.ReadAsStringAsync(Cancel)}");

        for (var attempt = 0; attempt < 150; attempt++)
        {
            if (Scalar(ServiceDatabase, $"select count(*) from analyzer_live_findings where user_id = '{userId}'") != "0")
            {
                await Task.Delay(1000, Cancel); // the decisions' view of risk follows the findings within a poll interval
                return;
            }

            await Task.Delay(200, Cancel);
        }

        Assert.Fail($"no finding about {userId}");
    }

    private static string Scalar(string database, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture)!;
    }

    [GeneratedRegex("""name="__RequestVerificationToken" type="hidden" value="([^"]+)" """)]
    private static partial Regex AntiForgery();

    [GeneratedRegex("""<input type="hidden" name="([^"]+)" value="([^"]*)" />""")]
    private static partial Regex Hidden();

    [GeneratedRegex("id=\"shared-key\">([a-z2-7 ]+)<")]
    private static partial Regex SharedKey();
}
