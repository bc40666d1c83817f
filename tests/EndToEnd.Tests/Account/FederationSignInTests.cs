using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.EndToEnd.Tests.Admin;
using CrmSecurity.Tests.Support;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Account;

/// <summary>
/// Two processes of the service: the upstream, in demo mode, plays the company's OpenID Connect provider (Entra ID, Okta);
/// the downstream, the service as CRM users meet it, has it configured as provider <c>corp</c> with just-in-time creation
/// and a role mapping (docs/identity-federation.md). They run on different host names (<c>127.0.0.1</c> and
/// <c>localhost</c>) so the browser keeps their cookies apart, as it would for two real domains. Both hold the same demo
/// users, so the upstream's bob is given his own company address first (an address links nothing: a new account with
/// another account's address is refused, Identity.Tests FederationTests).
/// </summary>
public sealed class FederationSite : IAsyncLifetime
{
    public const string Client = "crm-downstream";
    private const string Secret = "downstream-secret-4f1c9a7e2d";
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-federation-").FullName;
    private ServerProcess? _upstream;
    private ServerProcess? _downstream;
    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public Uri Upstream { get; private set; } = null!;

    public Uri Downstream { get; private set; } = null!;

    public string Output => $"upstream:{Environment.NewLine}{_upstream?.Output}{Environment.NewLine}downstream:{Environment.NewLine}{_downstream?.Output}";

    public async ValueTask InitializeAsync()
    {
        var cancel = TestContext.Current.CancellationToken;
        Upstream = new Uri($"http://127.0.0.1:{ServerProcess.FreeLoopbackPort()}/");
        Downstream = new Uri($"http://localhost:{ServerProcess.FreeLoopbackPort()}/");
        _upstream = await StartAsync(Upstream, Common("upstream", Upstream, new()
        {
            ["Identity__Clients__0__ClientId"] = Client,
            ["Identity__Clients__0__ClientSecret"] = Secret,
            ["Identity__Clients__0__GrantTypes__0"] = "authorization_code",
            ["Identity__Clients__0__Scopes__0"] = "openid",
            ["Identity__Clients__0__Scopes__1"] = "profile",
            ["Identity__Clients__0__Scopes__2"] = "email",
            ["Identity__Clients__0__Scopes__3"] = "roles",
            ["Identity__Clients__0__RedirectUris__0"] = new Uri(Downstream, "federation/corp/callback").AbsoluteUri,
        }), cancel);
        await GiveUpstreamBobHisOwnAddressAsync(cancel);
        const string Corp = "Identity__Federation__Providers__corp__";
        _downstream = await StartAsync(Downstream, Common("downstream", Downstream, new()
        {
            [Corp + "DisplayName"] = "Corp",
            [Corp + "Authority"] = Upstream.AbsoluteUri,
            [Corp + "ClientId"] = Client,
            [Corp + "ClientSecret"] = Secret,
            [Corp + "Scopes__0"] = "profile",
            [Corp + "Scopes__1"] = "email",
            [Corp + "Scopes__2"] = "roles",
            [Corp + "JustInTimeCreation"] = "true",
            [Corp + "BusinessUnit"] = "sales-west",
            [Corp + "RoleMappings__0__Claim"] = "role",
            [Corp + "RoleMappings__0__Value"] = "sales_manager",
            [Corp + "RoleMappings__0__Role"] = "sales_manager",
        }), cancel);

        _playwright = await Playwright.CreateAsync();
        Browser = await AdminSite.LaunchChromiumAsync(_playwright);
        Directory.CreateDirectory(AdminSite.Screenshots);
        Assertions.SetDefaultExpectTimeout(30_000);
    }

    /// <summary>The upstream's bob becomes bob@corp.example through its admin API (an audited profile edit, If-Match).</summary>
    private async Task GiveUpstreamBobHisOwnAddressAsync(CancellationToken cancel)
    {
        using var api = new HttpClient { BaseAddress = Upstream };
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = "demo-secops",
            ["client_secret"] = "demo-secops-secret",
            ["scope"] = "identity.admin",
        });
        using var tokenResponse = await api.PostAsync("connect/token", form, cancel);
        var token = (await tokenResponse.Content.ReadFromJsonAsync<JsonElement>(cancel)).GetProperty("access_token").GetString();
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var list = await api.GetFromJsonAsync<JsonElement>("admin/api/users", cancel);
        var users = list.ValueKind == JsonValueKind.Array ? list : list.GetProperty("items");
        var bob = users.EnumerateArray().Single(u => u.GetProperty("user_name").GetString() == "bob").GetProperty("id").GetString();
        using var current = await api.GetAsync($"admin/api/users/{bob}", cancel);
        using var put = new HttpRequestMessage(HttpMethod.Put, $"admin/api/users/{bob}")
        {
            Content = JsonContent.Create(new { display_name = "Bob Corp", email = "bob@corp.example" }),
        };
        put.Headers.TryAddWithoutValidation("If-Match", current.Headers.ETag?.Tag);
        using var changed = await api.SendAsync(put, cancel);
        if (!changed.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"giving the upstream's bob his own address: {(int)changed.StatusCode} {await changed.Content.ReadAsStringAsync(cancel)}");
        }
    }

    /// <summary>
    /// Starts one service; on a machine this busy the first start (creating every table) can pass ServerProcess's minute,
    /// so it is tried again on the same database, whose tables then exist.
    /// </summary>
    private static async Task<ServerProcess> StartAsync(Uri address, Dictionary<string, string?> settings, CancellationToken cancel)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await ServerProcess.StartOnAsync(address, settings, cancellationToken: cancel);
            }
            catch (ServerStartException) when (attempt < 3)
            {
                // tried again below
            }
        }
    }

    private Dictionary<string, string?> Common(string name, Uri address, Dictionary<string, string?> settings)
    {
        settings["Database__Provider"] = "Sqlite";
        settings["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, name + ".db")}";
        settings["Identity__AllowHttp"] = "true";
        settings["Identity__DemoMode"] = "true";
        settings["Identity__Issuer"] = address.AbsoluteUri;
        settings["AuditAnalyzer__DemoHistory__Enabled"] = "false";
        settings["Identity__MailPickupDirectory"] = Path.Combine(_directory, name + "-mail");
        return settings;
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        if (_downstream is not null)
        {
            await _downstream.DisposeAsync();
        }

        if (_upstream is not null)
        {
            await _upstream.DisposeAsync();
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A process may still hold a file for a moment; the temp directory is cleaned by the system later.
        }
    }
}

/// <summary>Issue 15, federation in a real browser: the sign-in page's provider button, the upstream's own sign-in, and back signed in.</summary>
public sealed class FederationSignInTests(FederationSite site) : IClassFixture<FederationSite>
{
    [Fact]
    public async Task Bob_of_the_company_signs_in_with_the_Corp_button_at_the_upstream_and_lands_signed_in_with_a_just_in_time_account()
    {
        var context = await site.Browser.NewContextAsync();
        context.SetDefaultTimeout(90_000);
        context.SetDefaultNavigationTimeout(90_000);
        var page = await context.NewPageAsync();

        await page.GotoAsync(new Uri(site.Downstream, "account/login?ReturnUrl=%2Faccount").AbsoluteUri);
        var button = page.GetByRole(AriaRole.Button, new() { Name = "Sign in with Corp" });
        await Assertions.Expect(button).ToBeVisibleAsync();
        await AdminSite.ScreenshotAsync(page, "sign-in-with-provider"); // axe-core clean, with the provider button

        await button.ClickAsync();
        // The upstream's own sign-in page (its host, its form): the downstream never sees bob's password.
        await page.WaitForAddressAsync(url => new Uri(url).Authority == site.Upstream.Authority && new Uri(url).AbsolutePath == "/account/login");
        await page.Locator("#username").FillAsync("bob");
        await page.Locator("#password").FillAsync("Bob-Manages-The-Team-42");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();

        try
        {
            await page.WaitForAddressAsync(url => new Uri(url).Authority == site.Downstream.Authority && new Uri(url).AbsolutePath == "/account");
        }
        catch (TimeoutException e)
        {
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(AdminSite.Screenshots, "federation-stuck.png"), FullPage = true });
            throw new TimeoutException($"the browser is on {page.Url}; {site.Output[^Math.Min(site.Output.Length, 3000)..]}", e);
        }

        // Signed in at the downstream as the account just-in-time creation made: corp.bob.
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("corp.bob");
        await AdminSite.ScreenshotAsync(page, "account-after-federated-sign-in");
    }
}
