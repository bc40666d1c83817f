using Microsoft.Playwright;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// The service as an operator runs it (demo mode, SQLite in a temporary folder) and one headless Chromium. Each test
/// gets its own browser context (cookie jar). Screenshots go to artifacts/screenshots at the repository root. Every page a
/// test signs in on or takes a screenshot of is first checked with axe-core (<see cref="Accessibility"/>).
/// </summary>
public sealed class AdminSite : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-e2e-").FullName;
    private ServerProcess? _server;
    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public Uri BaseAddress => _server!.BaseAddress;

    /// <summary>
    /// Headless Chromium as every browser test here launches it: Debian's chromium (Playwright's own browser download
    /// does not work here), found by scripts/test.sh through <c>CRM_SECURITY_TEST_CHROMIUM</c>.
    /// </summary>
    public static Task<IBrowser> LaunchChromiumAsync(IPlaywright playwright) => playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
    {
        ExecutablePath = Environment.GetEnvironmentVariable("CRM_SECURITY_TEST_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium",
        Headless = true,
        Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });

    public static string Screenshots { get; } = Path.Combine(RepositoryRoot(), "artifacts", "screenshots");

    public async ValueTask InitializeAsync()
    {
        _server = await ServerProcess.StartAsync(new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Identity__AllowHttp"] = "true",
            ["Identity__DemoMode"] = "true",
            ["AuditAnalyzer__DemoHistory__Enabled"] = "false", // the review tests fill the queue themselves
            ["Identity__MailPickupDirectory"] = Path.Combine(_directory, "mail"),
        }, cancellationToken: TestContext.Current.CancellationToken);

        _playwright = await Playwright.CreateAsync();
        Browser = await LaunchChromiumAsync(_playwright);
        Directory.CreateDirectory(Screenshots);
        Assertions.SetDefaultExpectTimeout(30_000);
    }

    /// <summary>
    /// A fresh browser context (cookie jar) on the service. The test machine is shared by several builds at once, so a
    /// page may take longer than Playwright's default 30 s to load; a slow page is not what these tests measure.
    /// </summary>
    public async Task<IBrowserContext> NewContextAsync(ColorScheme colorScheme = ColorScheme.Light)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = BaseAddress.AbsoluteUri, ColorScheme = colorScheme });
        context.SetDefaultTimeout(90_000);
        context.SetDefaultNavigationTimeout(90_000);
        return context;
    }

    /// <summary>A fresh browser context signed in through the login form, on <paramref name="path"/>.</summary>
    public async Task<IPage> SignInAsync(string userName, string password, string path)
    {
        var context = await NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(path);
        await Accessibility.AssertNoViolationsAsync(page); // the sign-in page
        await page.GetByLabel("User name").Or(page.Locator("#username")).First.FillAsync(userName);
        await page.Locator("#password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        try
        {
            // Poll the address and wait for the page's main element rather than for a navigation event: CI runs saw the
            // browser on the right page, shown in full, while Playwright's WaitForURL (load, then DOMContentLoaded) still
            // waited at 90 s, as if the event had fired before the wait began listening.
            var target = path.Split('?')[0];
            await page.WaitForAddressAsync(url => new Uri(url).AbsolutePath == target);
            await page.Locator("main").First.WaitForAsync(new() { State = WaitForSelectorState.Visible });
        }
        catch (TimeoutException e)
        {
            // Seen twice in CI (a second sign-in that never reached its page) and never locally: say where the browser
            // ended up and what it showed, and keep the picture, so the next occurrence explains itself.
            var shown = await page.Locator("main").First.InnerTextAsync(new() { Timeout = 5_000 }).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : "(no main element)", TaskScheduler.Default);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, $"sign-in-stuck-{userName}-{DateTime.UtcNow:HHmmss}.png"), FullPage = true });
            throw new TimeoutException($"{userName} signed in for {path} but the browser is on {page.Url} showing: {shown[..Math.Min(shown.Length, 400)]}", e);
        }

        await Accessibility.AssertNoViolationsAsync(page);
        return page;
    }

    /// <summary>Checks the page with axe-core, then keeps a full-page screenshot as an artefact.</summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        await Accessibility.AssertNoViolationsAsync(page);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, name + ".png"), FullPage = true });
    }

    public string Output => _server?.Output ?? "";

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
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Security.sln")))
            {
                return directory.FullName;
            }
        }

        return AppContext.BaseDirectory;
    }
}
