using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// The users page in headless Chromium (issue 13): a user locked out by failed sign-ins carries a "locked" badge, and dave
/// sends a password-reset link, the page saying where it went and never showing the link. Screenshot kept, axe checked.
/// </summary>
public sealed class UserPasswordResetPagesTests(AdminSite site) : IClassFixture<AdminSite>
{
    [Fact]
    public async Task A_locked_user_shows_as_locked_and_a_security_admin_sends_her_a_password_reset_link()
    {
        // Five wrong passwords lock erin out (Identity:Lockout:MaxFailedAttempts).
        var context = await site.NewContextAsync();
        var attacker = await context.NewPageAsync();
        for (var attempt = 0; attempt < 5; attempt++)
        {
            await attacker.GotoAsync("/account/login");
            await attacker.Locator("#username").FillAsync("erin");
            await attacker.Locator("#password").FillAsync("not-erins-password-" + attempt);
            await attacker.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
            await Assertions.Expect(attacker.Locator("#login-error")).ToBeVisibleAsync();
        }

        var page = await site.SignInAsync("dave", "Dave-Guards-The-Keys-42", "/admin/users");
        await Assertions.Expect(page.Locator("#locked-erin")).ToHaveTextAsync("locked");
        Assert.Equal(0, await page.Locator("#locked-alice").CountAsync());

        await page.GetByRole(AriaRole.Link, new() { Name = "erin", Exact = true }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Send password-reset link" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Sent a password-reset link to erin at erin@demo.example");
        Assert.DoesNotContain("token=", await page.ContentAsync(), StringComparison.Ordinal);
        await AdminSite.ScreenshotAsync(page, "user-locked-and-reset-link-sent");

        await page.GotoAsync("/admin/audit?action=user.password_reset_link");
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("erin@demo.example");
        Assert.DoesNotContain("token=", await page.ContentAsync(), StringComparison.Ordinal);
    }
}
