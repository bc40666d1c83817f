using System.Globalization;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// Issue 13, look and feel: one stylesheet for every page, zero axe-core WCAG 2.1 A/AA violations on each page people use,
/// a landing page that shows only the areas a person may use, and times in the person's own zone with UTC on hover.
/// A screenshot of every main page is kept in artifacts/screenshots.
/// </summary>
public sealed class DesignSystemTests(AdminSite site) : IClassFixture<AdminSite>
{
    private const string DavePassword = "Dave-Guards-The-Keys-42";

    [Fact]
    public async Task After_sign_in_each_person_sees_a_card_for_each_area_their_privileges_open_and_no_other()
    {
        // An end user: only their account (deny by default).
        var alice = await site.SignInAsync("alice", "Alice-Sells-Widgets-42", "/");
        await Assertions.Expect(alice.Locator("#area-account")).ToBeVisibleAsync();
        await Assertions.Expect(alice.Locator("#areas > li")).ToHaveCountAsync(1);
        await AdminSite.ScreenshotAsync(alice, "landing-end-user");

        // The security admin: administration (he also reads findings, without reviewing them).
        var dave = await site.SignInAsync("dave", DavePassword, "/");
        await Assertions.Expect(dave.Locator("#area-admin")).ToBeVisibleAsync();
        await Assertions.Expect(dave.Locator("#area-account")).ToBeVisibleAsync();
        await AdminSite.ScreenshotAsync(dave, "landing-security-admin");

        // The auditor: findings review.
        var carol = await site.SignInAsync("carol", "Carol-Reads-The-Logs-42", "/");
        await Assertions.Expect(carol.Locator("#area-review")).ToBeVisibleAsync();
        await AdminSite.ScreenshotAsync(carol, "landing-auditor");

        // The business-unit admin: administration, no findings.
        var wade = await site.SignInAsync("wade", "Wade-Admins-The-West-42", "/");
        await Assertions.Expect(wade.Locator("#area-admin")).ToBeVisibleAsync();
        await Assertions.Expect(wade.Locator("#area-review")).ToHaveCountAsync(0);

        // The card follows the page's own rule: alice's refused admin page stays refused.
        Assert.Equal(403, (await alice.GotoAsync("/admin/roles"))!.Status);
    }

    [Fact]
    public async Task A_sign_in_without_a_return_url_lands_on_the_landing_page()
    {
        var page = await (await site.NewContextAsync()).NewPageAsync();
        await page.GotoAsync("/account/login");
        await page.Locator("#username").FillAsync("alice");
        await page.Locator("#password").FillAsync("Alice-Sells-Widgets-42");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();

        await page.WaitForAddressAsync(url => new Uri(url).AbsolutePath == "/");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("Welcome, alice");
    }

    [Fact]
    public async Task A_time_is_shown_in_the_persons_own_zone_with_utc_on_hover()
    {
        var page = await site.SignInAsync("dave", DavePassword, "/account"); // dave's zoneinfo is Europe/Berlin
        var sessions = page.GetByRole(AriaRole.Table, new() { Name = "Where you are signed in" });
        await Assertions.Expect(sessions.Locator("thead")).ToContainTextAsync("Europe/Berlin");
        var time = sessions.Locator("tbody time").First;
        await time.HoverAsync();

        var utc = DateTimeOffset.Parse((await time.GetAttributeAsync("datetime"))!, CultureInfo.InvariantCulture);
        Assert.Equal(TimeSpan.Zero, utc.Offset);
        Assert.True((DateTimeOffset.UtcNow - utc).Duration() < TimeSpan.FromHours(1), $"sign-in time {utc:o} is not now");
        Assert.Equal(utc.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC", await time.GetAttributeAsync("title"));
        var berlin = TimeZoneInfo.ConvertTime(utc, TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin"));
        await Assertions.Expect(time).ToHaveTextAsync(berlin.ToString("ddd d MMM yyyy, HH:mm", CultureInfo.InvariantCulture));
        Assert.NotEqual(utc.Hour, berlin.Hour); // Berlin is one or two hours ahead of UTC: the page did convert
    }

    [Fact]
    public async Task Every_main_page_passes_axe_core_links_the_one_stylesheet_and_is_kept_as_a_screenshot()
    {
        var anonymous = await (await site.NewContextAsync()).NewPageAsync();
        var stylesheets = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, name) in new[] { ("/account/login", "sign-in"), ("/account/forgot-password", "forgot-password") })
        {
            await VisitAsync(anonymous, path, name, stylesheets);
        }

        await anonymous.GotoAsync("/account/login");
        await anonymous.Locator("#username").FillAsync("nobody-here");
        await anonymous.Locator("#password").FillAsync("not-a-password");
        await anonymous.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync(); // the error state
        await Assertions.Expect(anonymous.Locator("#login-error")).ToBeVisibleAsync();
        await VisitAsync(anonymous, null, "sign-in-failed", stylesheets);

        var dave = await site.SignInAsync("dave", DavePassword, "/");
        var consent = "/connect/authorize?client_id=demo-spa&response_type=code&redirect_uri=" + Uri.EscapeDataString("http://localhost:5082/callback")
            + "&scope=openid%20profile&state=design-check&nonce=design-check&code_challenge=" + new string('A', 43) + "&code_challenge_method=S256";
        (string Path, string Name)[] pages =
        [
            ("/", "landing"),
            ("/admin", "admin-overview"),
            ("/admin/users", "admin-users"),
            ("/admin/users?user=alice", "admin-user"),
            ("/admin/teams?team=west-sales", "admin-teams"),
            ("/admin/roles?role=sales_rep", "admin-role-grid"),
            ("/admin/business-units?unit=sales", "admin-business-units"),
            ("/admin/field-security?profile=all_secured_fields", "admin-field-security"),
            ("/admin/shares", "admin-shares"),
            ("/admin/clients", "admin-clients"),
            ("/admin/who-can-access?Entity=contact&Action=read", "admin-who-can-access"),
            ("/admin/audit", "admin-audit"),
            ("/review", "review-queue-empty"),
            ("/review/suppressions", "review-suppressions"),
            ("/account", "account"),
            ("/account/two-factor", "account-two-factor"),
            ("/account/passkeys", "account-passkeys-design"),
            (consent, "consent"),
            ("/connect/verify", "device-verify"),
            ("/connect/verify?user_code=WRONG-CODE", "device-verify-unknown-code"),
            ("/connect/logout", "sign-out"),
        ];
        foreach (var (path, name) in pages)
        {
            await VisitAsync(dave, path, name, stylesheets);
        }

        // One stylesheet, one address, for Identity's and AuditAnalyzer's layouts alike; no inline style anywhere.
        var href = Assert.Single(stylesheets);
        Assert.Matches("^/assets/design\\.[0-9a-f]{16}\\.css$", href);
        var css = await dave.APIRequest.GetAsync(href);
        Assert.Equal(200, css.Status);
        Assert.StartsWith("text/css", css.Headers["content-type"], StringComparison.Ordinal);
        Assert.Contains("immutable", css.Headers["cache-control"], StringComparison.Ordinal);
        Assert.Contains("max-age=31536000", css.Headers["cache-control"], StringComparison.Ordinal);
        Assert.Equal(404, (await dave.APIRequest.GetAsync("/assets/design.0000000000000000.css")).Status);
    }

    [Fact]
    public async Task Dark_mode_keeps_every_colour_pair_at_wcag_aa_contrast()
    {
        // prefers-color-scheme: dark switches the tokens; axe's color-contrast rule then checks the dark pairs.
        var page = await (await site.NewContextAsync(ColorScheme.Dark)).NewPageAsync();
        await page.GotoAsync("/account/login");
        await Accessibility.AssertNoViolationsAsync(page);
        await page.Locator("#username").FillAsync("dave");
        await page.Locator("#password").FillAsync(DavePassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.WaitForAddressAsync(url => new Uri(url).AbsolutePath == "/");
        Assert.Equal("rgb(15, 19, 25)", await page.EvaluateAsync<string>("getComputedStyle(document.documentElement).backgroundColor"));

        foreach (var (path, name) in new[] { ("/", "landing"), ("/admin/roles?role=sales_rep", "admin-role-grid"), ("/admin/audit", "admin-audit"), ("/admin/shares?revoke=none", "admin-shares"), ("/review", "review-queue"), ("/account", "account") })
        {
            await page.GotoAsync(path);
            await AdminSite.ScreenshotAsync(page, "dark-" + name);
        }
    }

    private static async Task VisitAsync(IPage page, string? path, string name, HashSet<string> stylesheets)
    {
        if (path is not null)
        {
            var response = await page.GotoAsync(path);
            Assert.True(response!.Ok, $"{path}: {response.Status}");
        }

        await Assertions.Expect(page.Locator("main#main h1")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("a.skip-link[href='#main']")).ToHaveCountAsync(1);
        Assert.Equal(0, await page.Locator("style, [style]").CountAsync());
        foreach (var link in await page.Locator("link[rel=stylesheet]").AllAsync())
        {
            stylesheets.Add((await link.GetAttributeAsync("href"))!);
        }

        await AdminSite.ScreenshotAsync(page, "page-" + name);
    }
}
