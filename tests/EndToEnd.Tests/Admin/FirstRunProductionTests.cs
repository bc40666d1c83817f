using System.Security.Cryptography;
using System.Text.RegularExpressions;
using CrmSecurity.Tests.Support;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// The first run of an installation in Production (issue 13, "Proof"), as docs/install.md tells an operator and the new
/// administrator to do it: the real executable on an empty SQLite database without demo data, <c>keys init</c> and
/// <c>users create-admin</c> through the host's command line, then headless Chromium as that person: the one-time link to choose a password, two-step
/// verification (required for admins in Production), an OIDC client registered on the Clients page, a role's privilege
/// changed, and that change found in the audit viewer with its before and after. Every page is checked with axe-core and
/// its screenshot kept.
/// </summary>
public sealed partial class FirstRunProductionTests : IAsyncDisposable
{
    private const string Password = "Ada-Chooses-Her-Own-Passphrase-7";
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-e2e-first-run-").FullName;
    private readonly Uri _origin = new($"http://127.0.0.1:{ServerProcess.FreeLoopbackPort()}/");

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>
    /// What an installation sets (docs/install.md, "First run in production"): the Production environment, its own master
    /// key, the public origin and AllowedHosts, demo mode off. The one concession to a test machine is plain HTTP on
    /// loopback (Identity:AllowHttp), as every browser test here uses; a real installation serves https.
    /// </summary>
    private Dictionary<string, string?> Settings => new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Production",
        ["DOTNET_ENVIRONMENT"] = "Production",
        ["Database__Provider"] = "Sqlite",
        ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
        ["CRM_SECURITY_MASTER_KEY"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        ["Identity__Issuer"] = _origin.AbsoluteUri,
        ["AllowedHosts"] = _origin.Host,
        ["Identity__AllowHttp"] = "true",
        ["Identity__MailPickupDirectory"] = Path.Combine(_directory, "mail"),
    };

    [Fact]
    public async Task On_an_empty_production_database_the_first_admin_sets_up_signs_in_registers_a_client_changes_a_role_and_reads_it_in_the_audit_trail()
    {
        var settings = Settings; // one master key for the verbs and the service
        var (keyring, keys) = await ServerProcess.RunVerbAsync(["keys", "init"], settings, _directory, Cancel);
        Assert.True(keyring == 0, keys);
        var (created, output) = await ServerProcess.RunVerbAsync(["users", "create-admin", "--user-name", "ada", "--email", "ada@example.org"], settings, _directory, Cancel);
        Assert.True(created == 0, output);
        var link = SetupLink().Match(output);
        Assert.True(link.Success, "create-admin printed no setup link:\n" + output);

        await using var server = await ServerProcess.StartOnAsync(_origin, settings, _directory, Cancel);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await AdminSite.LaunchChromiumAsync(playwright);
        await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = _origin.AbsoluteUri });
        context.SetDefaultTimeout(90_000);
        var page = await context.NewPageAsync();
        Directory.CreateDirectory(AdminSite.Screenshots);

        // 1. The link the operator handed over: ada chooses her password, once.
        await page.GotoAsync(link.Value);
        await AdminSite.ScreenshotAsync(page, "first-run-choose-password");
        await page.Locator("#new").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("Your password was changed.");

        // 2. Sign in: Production requires two-step verification for admins, so the admin pages send her to turn it on.
        await SignInAsync(page, "/admin");
        await page.WaitForAddressAsync(url => url.Contains("/account/two-factor?required=admin", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#required-for-admin")).ToBeVisibleAsync();
        await AdminSite.ScreenshotAsync(page, "first-run-two-factor-required");
        var key = await page.Locator("#shared-key").InnerTextAsync();
        await page.Locator("#code").FillAsync(Totp.Code(key, DateTimeOffset.UtcNow));
        await page.Locator("#password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Turn on" }).ClickAsync();
        await Assertions.Expect(page.Locator("#recovery-codes li")).Not.ToHaveCountAsync(0);

        await page.GotoAsync("/connect/logout");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await SignInAsync(page, "/admin/clients");
        await Assertions.Expect(page.Locator("#code")).ToBeVisibleAsync();
        await AdminSite.ScreenshotAsync(page, "first-run-second-step");
        // Each authenticator code is accepted once (RFC 6238 §5.2): the enrolment used this step's, so the app's next one.
        await page.Locator("#code").FillAsync(Totp.Code(key, DateTimeOffset.UtcNow.AddSeconds(30)));
        await page.GetByRole(AriaRole.Button, new() { Name = "Verify" }).ClickAsync();
        await page.WaitForAddressAsync(url => new Uri(url).AbsolutePath == "/admin/clients");

        // 3. Register the installation's first CRM app on the Clients page; its secret, shown once, gets a token.
        await page.GetByLabel("Client id").FillAsync("crm-app");
        await page.GetByLabel("Display name").FillAsync("CRM app");
        await page.GetByLabel("client_credentials").CheckAsync();
        await page.GetByLabel("crm.api", new() { Exact = true }).CheckAsync();
        await page.Locator("#redirect-uris").FillAsync("https://crm.example.com/signin-oidc");
        await page.GetByRole(AriaRole.Button, new() { Name = "Register client" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Registered the client 'crm-app'");
        var secret = await page.GetByLabel("Client secret").InputValueAsync();
        await AdminSite.ScreenshotAsync(page, "first-run-client-registered");
        var token = await context.APIRequest.PostAsync("/connect/token", new()
        {
            Headers = new Dictionary<string, string> { ["Authorization"] = "Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("crm-app:" + secret)) },
            Form = context.APIRequest.CreateFormData().Set("grant_type", "client_credentials").Set("scope", "crm.api"),
        });
        Assert.True(token.Ok, $"the registered client got no token: {token.Status} {await token.TextAsync()}");

        // 4. Change a role's privilege in the grid.
        await page.GotoAsync("/admin/roles?role=marketing");
        await page.GetByLabel("Invoice (custom): read", new() { Exact = true }).SelectOptionAsync("business_unit");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save role" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the privileges of role 'Marketing'");
        await AdminSite.ScreenshotAsync(page, "first-run-role-changed");

        // 5. The audit viewer: the change, by ada, with its before and after, and the chain intact from the first entry
        // (create-admin's own, by the command line).
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Administration" }).GetByRole(AriaRole.Link, new() { Name = "Audit trail" }).ClickAsync();
        await page.GetByLabel("Action").SelectOptionAsync("role.update");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await page.WaitForAddressAsync(url => url.Contains("action=role.update", StringComparison.Ordinal));
        var change = page.Locator("#audit-entries > tbody > tr").Filter(new() { HasText = "Marketing" });
        await Assertions.Expect(change).ToHaveCountAsync(1);
        await Assertions.Expect(change).ToContainTextAsync("ada");
        var cell = change.Locator("table.diff tr", new() { HasText = "privileges.invoice.read" });
        await Assertions.Expect(cell).ToHaveClassAsync("diff-added");
        await Assertions.Expect(cell.Locator("ins")).ToHaveTextAsync("\"business_unit\"");
        await Assertions.Expect(page.Locator("#verify-status")).ToContainTextAsync("Chain intact");
        await AdminSite.ScreenshotAsync(page, "first-run-audit-viewer");

        await page.GotoAsync("/admin/audit?action=user.create");
        await Assertions.Expect(page.Locator("#audit-entries > tbody > tr").Filter(new() { HasText = "command line: users create-admin" })).ToHaveCountAsync(1);
        Assert.DoesNotContain(Password, server.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, server.Output, StringComparison.Ordinal);
    }

    /// <summary>The sign-in form, reached as the browser is sent there for <paramref name="returnUrl"/>.</summary>
    private static async Task SignInAsync(IPage page, string returnUrl)
    {
        await page.GotoAsync("/account/login?ReturnUrl=" + Uri.EscapeDataString(returnUrl));
        await Accessibility.AssertNoViolationsAsync(page);
        await page.Locator("#username").FillAsync("ada");
        await page.Locator("#password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await page.WaitForLoadStateAsync(LoadState.DOMContentLoaded);
    }

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+/account/reset-password\?user=[0-9a-f-]{36}&token=\S+")]
    private static partial Regex SetupLink();
}
