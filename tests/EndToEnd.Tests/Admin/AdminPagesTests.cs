using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>The admin pages in headless Chromium, signed in through the real login form.</summary>
public sealed class AdminPagesTests(AdminSite site) : IClassFixture<AdminSite>
{
    [Fact]
    public async Task A_security_admin_changes_a_cell_of_the_privilege_grid_and_the_decision_changes()
    {
        var page = await site.SignInAsync("dave", "Dave-Guards-The-Keys-42", "/admin/who-can-access?Entity=invoice&Action=read");
        var before = await UsersInResultAsync(page);
        Assert.DoesNotContain("alice", before);
        Assert.Contains("frank", before); // finance reads invoices

        await page.GotoAsync("/admin/roles?role=sales_rep");
        var cell = page.GetByLabel("Invoice (custom): read", new() { Exact = true });
        Assert.Equal("none", await cell.InputValueAsync());
        await cell.SelectOptionAsync("business_unit");
        await AdminSite.ScreenshotAsync(page, "role-grid-changed");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save role" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the privileges of role 'Sales representative'");
        Assert.Equal("business_unit", await page.GetByLabel("Invoice (custom): read", new() { Exact = true }).InputValueAsync());

        await page.GotoAsync("/admin/who-can-access");
        await page.GetByLabel("Entity").SelectOptionAsync("invoice");
        await page.GetByLabel("Action").SelectOptionAsync("read");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search" }).ClickAsync();
        var after = await UsersInResultAsync(page);
        await AdminSite.ScreenshotAsync(page, "who-can-access-after-change");
        Assert.Contains("alice", after);
        await Assertions.Expect(page.Locator("#who-can-access tr", new() { HasText = "alice" })).ToContainTextAsync("Sales representative");
    }

    [Fact]
    public async Task A_business_unit_admin_sees_only_their_unit_and_cannot_edit_roles()
    {
        var page = await site.SignInAsync("wade", "Wade-Admins-The-West-42", "/admin/who-can-access?Entity=contact&Action=read");
        var users = await UsersInResultAsync(page);
        await AdminSite.ScreenshotAsync(page, "who-can-access-business-unit-admin");

        Assert.Contains("alice", users);
        Assert.Contains("bob", users);
        Assert.DoesNotContain("ed", users); // Sales East is outside wade's business unit
        await page.GotoAsync("/admin/roles?role=sales_rep");
        await Accessibility.AssertNoViolationsAsync(page); // the grid read-only
        Assert.True(await page.GetByLabel("Contact: read", new() { Exact = true }).IsDisabledAsync()); // view without manage
        Assert.Equal(0, await page.GetByRole(AriaRole.Button, new() { Name = "Save role" }).CountAsync());
    }

    [Fact]
    public async Task A_user_who_is_not_an_admin_is_refused()
    {
        var page = await site.SignInAsync("alice", "Alice-Sells-Widgets-42", "/account");
        var response = await page.GotoAsync("/admin/roles");

        Assert.Equal(403, response!.Status);
    }

    private static async Task<List<string>> UsersInResultAsync(IPage page)
    {
        await Assertions.Expect(page.Locator("#who-can-access")).ToBeVisibleAsync();
        return [.. (await page.Locator("#who-can-access tbody th").AllInnerTextsAsync()).Select(text => text.Trim())];
    }
}
