using CrmSecurity.EndToEnd.Tests.Admin;
using CrmSecurity.Tests.Support;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Account;

/// <summary>
/// Issue 15, "MFA cannot be turned off without a fresh authentication", for passkeys: the service with a short freshness
/// window (<c>Identity:Mfa:FreshAuthenticationToTurnOff</c>, 30 s here, 5 minutes shipped) and one headless Chromium with a
/// virtual authenticator. A session older than the window, an unattended browser or a stolen cookie, cannot remove a
/// passkey, neither through the page nor by posting the removal itself.
/// </summary>
public sealed class StaleSessionPasskeyTests : IAsyncLifetime
{
    private static readonly TimeSpan Fresh = TimeSpan.FromSeconds(30);
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-stale-passkey-").FullName;
    private ServerProcess? _server;
    private IPlaywright? _playwright;
    private IBrowser? _browser;
    private Uri _baseAddress = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        // WebAuthn needs a domain as the relying party id: localhost, which is also a secure context over plain HTTP.
        _baseAddress = new Uri($"http://localhost:{ServerProcess.FreeLoopbackPort()}/");
        var settings = new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Identity__AllowHttp"] = "true",
            ["Identity__DemoMode"] = "true",
            ["Identity__Issuer"] = _baseAddress.AbsoluteUri,
            ["AuditAnalyzer__DemoHistory__Enabled"] = "false",
            ["Identity__MailPickupDirectory"] = Path.Combine(_directory, "mail"),
            ["Identity__Mfa__FreshAuthenticationToTurnOff"] = Fresh.ToString("c", System.Globalization.CultureInfo.InvariantCulture),
        };
        for (var attempt = 1; _server is null; attempt++)
        {
            try
            {
                _server = await ServerProcess.StartOnAsync(_baseAddress, settings, cancellationToken: Cancel);
            }
            catch (ServerStartException) when (attempt < 3)
            {
                // On a busy machine the first start (creating every table) can pass ServerProcess's minute; the tables then exist.
            }
        }

        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Environment.GetEnvironmentVariable("CRM_SECURITY_TEST_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium",
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        Directory.CreateDirectory(AdminSite.Screenshots);
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task A_session_older_than_the_freshness_window_cannot_remove_a_passkey_through_the_page_or_by_posting_the_removal()
    {
        var page = await NewPageWithAuthenticatorAsync();
        await PasskeySite.SignInWithPasswordAsync(page, "grace", "Grace-Runs-Campaigns-42", "/account/passkeys");
        var signedIn = DateTimeOffset.UtcNow; // the sign-in's auth_time is no later than this
        await PasskeySite.RegisterPasskeyAsync(page, "Grace's key");
        var remaining = signedIn + Fresh + TimeSpan.FromSeconds(2) - DateTimeOffset.UtcNow;
        if (remaining > TimeSpan.Zero)
        {
            await Task.Delay(remaining, Cancel);
        }

        // Through the page: no confirmation is offered, the page says to sign in again.
        await page.GotoAsync("/account/passkeys");
        await page.GetByRole(AriaRole.Button, new() { Name = "Remove the passkey Grace's key" }).ClickAsync();
        await Assertions.Expect(page.Locator("#fresh-sign-in")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Remove the passkey “Grace's key”?" })).ToHaveCountAsync(0);
        await AdminSite.ScreenshotAsync(page, "account-passkeys-remove-stale-session");

        // The attack: the stale session posts the confirmed removal itself, with the page's own anti-forgery token.
        var form = page.Locator("form[action*='handler=Remove']").First;
        var token = await form.Locator("input[name='__RequestVerificationToken']").GetAttributeAsync("value");
        var id = await form.Locator("input[name='Id']").GetAttributeAsync("value");
        var forged = await page.Context.APIRequest.PostAsync(new Uri(_baseAddress, "account/passkeys?handler=Remove").AbsoluteUri, new()
        {
            Form = FormOf(page, ("__RequestVerificationToken", token!), ("Id", id!), ("Confirm", "true")),
            MaxRedirects = 0,
        });
        var html = await forged.TextAsync();
        Assert.Equal(200, forged.Status);
        Assert.Contains("id=\"fresh-sign-in\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("was removed", html, StringComparison.Ordinal);
        await page.GotoAsync("/account/passkeys");
        await Assertions.Expect(page.GetByRole(AriaRole.Table, new() { Name = "Your passkeys" })).ToContainTextAsync("Grace's key");

        // A fresh sign-in may remove it.
        await page.Context.ClearCookiesAsync();
        await PasskeySite.SignInWithPasswordAsync(page, "grace", "Grace-Runs-Campaigns-42", "/account/passkeys");
        await page.GetByRole(AriaRole.Button, new() { Name = "Remove the passkey Grace's key" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Remove passkey" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status).First).ToContainTextAsync("was removed");
    }

    private static IFormData FormOf(IPage page, params (string Name, string Value)[] fields)
    {
        var form = page.Context.APIRequest.CreateFormData();
        foreach (var (name, value) in fields)
        {
            form.Set(name, value);
        }

        return form;
    }

    /// <summary>A browser context and page with its own CDP virtual authenticator standing in for a platform passkey.</summary>
    private async Task<IPage> NewPageWithAuthenticatorAsync()
    {
        var context = await _browser!.NewContextAsync(new BrowserNewContextOptions { BaseURL = _baseAddress.AbsoluteUri });
        context.SetDefaultTimeout(90_000);
        context.SetDefaultNavigationTimeout(90_000);
        await context.AddInitScriptAsync("Object.defineProperty(PublicKeyCredential, 'isConditionalMediationAvailable', { value: undefined });");
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
}
