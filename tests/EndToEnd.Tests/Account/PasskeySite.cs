using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CrmSecurity.EndToEnd.Tests.Admin;
using CrmSecurity.Tests.Support;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Account;

/// <summary>
/// The service in demo mode on <c>http://localhost:PORT</c> (WebAuthn needs a domain as the relying party id, never an IP
/// address, and a secure context: <c>localhost</c> is one over plain HTTP), with one headless Chromium whose pages get a
/// CDP virtual authenticator (ctap2, internal, resident keys, user verification) standing in for a platform passkey.
/// </summary>
public class PasskeySite : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-passkeys-").FullName;
    private ServerProcess? _server;
    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>The public origin, <c>http://localhost:PORT/</c> (also <c>Identity:Issuer</c>).</summary>
    public Uri BaseAddress { get; private set; } = null!;

    public string Output => _server?.Output ?? "";

    public async ValueTask InitializeAsync()
    {
        BaseAddress = new Uri($"http://localhost:{ServerProcess.FreeLoopbackPort()}/");
        var settings = new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Identity__AllowHttp"] = "true",
            ["Identity__DemoMode"] = "true",
            ["Identity__Issuer"] = BaseAddress.AbsoluteUri,
            ["AuditAnalyzer__DemoHistory__Enabled"] = "false",
            ["Identity__MailPickupDirectory"] = Path.Combine(_directory, "mail"),
            // Every test signs in several times from one address; the throttle is not what these tests measure.
            ["Identity__Throttling__LoginPerIpPerMinute"] = "1000",
            ["Identity__Throttling__TwoFactorPerIpPerMinute"] = "1000",
        };
        AddSettings(settings);
        for (var attempt = 1; _server is null; attempt++)
        {
            try
            {
                _server = await ServerProcess.StartOnAsync(BaseAddress, settings, cancellationToken: TestContext.Current.CancellationToken);
            }
            catch (ServerStartException) when (attempt < 3)
            {
                // On a busy machine the first start (creating every table) can pass ServerProcess's minute; the tables then exist.
            }
        }

        _playwright = await Playwright.CreateAsync();
        Browser = await AdminSite.LaunchChromiumAsync(_playwright);
        Directory.CreateDirectory(AdminSite.Screenshots);
        Assertions.SetDefaultExpectTimeout(30_000);
    }

    /// <summary>Settings a site for one test class adds to the shared ones above (a shorter freshness window, ...).</summary>
    protected virtual void AddSettings(Dictionary<string, string?> settings)
    {
    }

    /// <summary>
    /// A fresh browser context and page with its own virtual authenticator (its passkeys live in that page's authenticator).
    /// The virtual authenticator answers a conditional request (passkeys in the user name's autofill) at once, as if the
    /// person had picked the passkey; unless <paramref name="conditionalUi"/>, the page's browser offers no conditional UI,
    /// so the sign-in page waits for its buttons.
    /// </summary>
    public async Task<IPage> NewPageWithAuthenticatorAsync(bool conditionalUi = false)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = BaseAddress.AbsoluteUri });
        context.SetDefaultTimeout(90_000);
        context.SetDefaultNavigationTimeout(90_000);
        if (!conditionalUi)
        {
            await context.AddInitScriptAsync("Object.defineProperty(PublicKeyCredential, 'isConditionalMediationAvailable', { value: undefined });");
        }

        var page = await context.NewPageAsync();
        var cdp = await context.NewCDPSessionAsync(page);
        await cdp.SendAsync("WebAuthn.enable", new Dictionary<string, object> { ["enableUI"] = false });
        await cdp.SendAsync("WebAuthn.addVirtualAuthenticator", new Dictionary<string, object>
        {
            ["options"] = new Dictionary<string, object>
            {
                ["protocol"] = "ctap2",
                ["transport"] = "internal",
                ["hasResidentKey"] = true,
                ["hasUserVerification"] = true,
                ["isUserVerified"] = true,
                ["automaticPresenceSimulation"] = true,
            },
        });
        return page;
    }

    /// <summary>Signs in with user name and password on the page's sign-in form, ending on <paramref name="path"/>.</summary>
    public static async Task SignInWithPasswordAsync(IPage page, string userName, string password, string path)
    {
        await page.GotoAsync("/account/login?ReturnUrl=" + Uri.EscapeDataString(path));
        await page.Locator("#username").FillAsync(userName);
        await page.Locator("#password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await page.WaitForAddressAsync(url => new Uri(url).AbsolutePath != "/account/login");
    }

    /// <summary>Registers a passkey named <paramref name="name"/> on the account page with the page's authenticator.</summary>
    public static async Task RegisterPasskeyAsync(IPage page, string name)
    {
        await page.GotoAsync("/account/passkeys");
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync(name);
        await page.GetByRole(AriaRole.Button, new() { Name = "Add a passkey" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status).First).ToContainTextAsync($"The passkey “{name}” was added");
    }

    /// <summary>
    /// Runs an authorization code flow with PKCE for the demo CRM in the page's session (the redirect to the CRM is caught
    /// in the browser), exchanges the code at the token endpoint and returns the ID token's claims.
    /// </summary>
    public async Task<JsonElement> AuthorizationCodeFlowAsync(IPage page, string? acrValues = null, Func<IPage, Task>? stepUp = null)
    {
        const string redirectUri = "http://localhost:5081/signin-oidc";
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var code = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        // The redirect to the CRM is seen as the browser requests it (nothing listens there); a redirect at the end of a
        // navigation is not always handed to a route, so the request event is what reads the code.
        void Capture(object? sender, IRequest request)
        {
            if (request.Url.StartsWith(redirectUri, StringComparison.Ordinal))
            {
                var query = System.Web.HttpUtility.ParseQueryString(new Uri(request.Url).Query);
                code.TrySetResult(query["code"] ?? "error: " + query["error"] + " " + query["error_description"]);
            }
        }

        page.Request += Capture;
        await page.RouteAsync(redirectUri + "**", route =>
            route.FulfillAsync(new() { Status = 200, ContentType = "text/html", Body = "<!DOCTYPE html><html lang=\"en\"><title>CRM</title><h1>Signed in</h1></html>" }));
        var authorize = "/connect/authorize?client_id=demo-crm&response_type=code&scope=openid%20profile&redirect_uri=" + Uri.EscapeDataString(redirectUri)
            + "&state=passkey-test&nonce=passkey-test&code_challenge=" + challenge + "&code_challenge_method=S256"
            + (acrValues is null ? "" : "&acr_values=" + Uri.EscapeDataString(acrValues));
        try
        {
            await page.GotoAsync(authorize);
        }
        catch (PlaywrightException) when (code.Task.IsCompleted)
        {
            // The browser could not load the CRM's page; the code was already read from its request.
        }

        if (stepUp is not null)
        {
            await stepUp(page);
        }

        var value = await code.Task.WaitAsync(TimeSpan.FromSeconds(90), TestContext.Current.CancellationToken);
        Assert.DoesNotContain("error", value, StringComparison.Ordinal);
        page.Request -= Capture;
        await page.UnrouteAsync(redirectUri + "**");

        using var http = new HttpClient { BaseAddress = BaseAddress };
        using var response = await http.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["code"] = value,
            ["redirect_uri"] = redirectUri,
            ["code_verifier"] = verifier,
            ["client_id"] = "demo-crm",
            ["client_secret"] = "demo-crm-secret",
        }), TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, body);
        using var tokens = JsonDocument.Parse(body);
        var idToken = tokens.RootElement.GetProperty("id_token").GetString()!;
        var payload = idToken.Split('.')[1];
        return JsonDocument.Parse(Convert.FromBase64String(payload.Replace('-', '+').Replace('_', '/').PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '='))).RootElement.Clone();
    }

    /// <summary>
    /// The details of the access events written for <paramref name="userName"/> (the <c>identity_access_events</c> table),
    /// waiting up to 10 s for <paramref name="expected"/>: events are written off the request path, within about 100 ms.
    /// </summary>
    public async Task<List<string>> AccessEventDetailsAsync(string userName, string expected)
    {
        var details = new List<string>();
        for (var attempt = 0; attempt < 50 && !details.Exists(d => d.Contains(expected, StringComparison.Ordinal)); attempt++)
        {
            await Task.Delay(200, TestContext.Current.CancellationToken);
            details.Clear();
            await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_directory, "security.db")};Mode=ReadOnly;Pooling=false");
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT Action || ' ' || COALESCE(Details, '') FROM identity_access_events WHERE UserName = $user";
            command.Parameters.AddWithValue("$user", userName);
            await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
            {
                details.Add(reader.GetString(0));
            }
        }

        return details;
    }

    /// <summary>The amr values of an ID token's claims.</summary>
    public static string[] Amr(JsonElement claims) => [.. claims.GetProperty("amr").EnumerateArray().Select(v => v.GetString()!)];

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
        GC.SuppressFinalize(this);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
