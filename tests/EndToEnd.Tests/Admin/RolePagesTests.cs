using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// The role page in headless Chromium at 1280x800 (issue 13): the privilege grid fits the screen (it scrolls inside its own
/// box, headers stick), dave clones a role and sets a whole row and a whole column at once; wade, who may only read
/// roles, gets neither form. Screenshots kept, axe checked.
/// </summary>
public sealed class RolePagesTests(AdminSite site) : IClassFixture<AdminSite>
{
    [Fact]
    public async Task The_privilege_grid_fits_a_1280_pixel_screen_and_a_security_admin_clones_a_role_and_sets_a_row_and_a_column()
    {
        var page = await site.SignInAsync("dave", "Dave-Guards-The-Keys-42", "/admin/roles?role=sales_rep");
        await page.SetViewportSizeAsync(1280, 800);
        await page.ReloadAsync();

        // No horizontal page scroll at 1280 px: the grid scrolls inside its own labelled, focusable region.
        Assert.True(await page.EvaluateAsync<int>("document.scrollingElement.scrollWidth") <= 1280,
            $"the role page is {await page.EvaluateAsync<int>("document.scrollingElement.scrollWidth")} px wide at 1280 px");
        var region = page.GetByRole(AriaRole.Region, new() { Name = "Sales representative" });
        await region.FocusAsync();
        Assert.True(await region.EvaluateAsync<bool>("element => element === document.activeElement"), "the grid's scroll region takes keyboard focus");
        Assert.Equal("sticky", await page.Locator("#privilege-grid thead th").First.EvaluateAsync<string>("th => getComputedStyle(th).position"));
        Assert.Equal("sticky", await page.Locator("#privilege-grid tbody th").First.EvaluateAsync<string>("th => getComputedStyle(th).position"));
        await AdminSite.ScreenshotAsync(page, "role-grid-1280");

        await page.GetByLabel("New role id").FillAsync("sales_rep_copy");
        await page.GetByLabel("New role name").FillAsync("Sales rep copy");
        await page.GetByRole(AriaRole.Button, new() { Name = "Clone role" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Created the role 'Sales rep copy' as a copy of 'Sales representative'");
        await Assertions.Expect(page.Locator("#cell-contact-read")).ToHaveValueAsync("business_unit");

        await page.Locator("#line").SelectOptionAsync("row:contact");
        await page.Locator("#line-depth").SelectOptionAsync("none");
        await page.GetByRole(AriaRole.Button, new() { Name = "Set row or column" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Set the row contact of role 'Sales rep copy' to none");
        foreach (var action in new[] { "create", "read", "update", "delete", "assign", "share", "export" })
        {
            await Assertions.Expect(page.Locator($"#cell-contact-{action}")).ToHaveValueAsync("none");
        }

        await page.Locator("#line").SelectOptionAsync("column:read");
        await page.Locator("#line-depth").SelectOptionAsync("own");
        await page.GetByRole(AriaRole.Button, new() { Name = "Set row or column" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Set the column read");
        await Assertions.Expect(page.Locator("#cell-account-read")).ToHaveValueAsync("own");
        await Assertions.Expect(page.Locator("#cell-contact-read")).ToHaveValueAsync("own");
        await AdminSite.ScreenshotAsync(page, "role-grid-row-and-column-set");

        await page.GotoAsync("/admin/audit?action=role.privileges");
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("Sales rep copy");
    }

    [Fact]
    public async Task A_business_unit_admin_who_may_only_read_roles_gets_no_clone_or_row_forms()
    {
        var page = await site.SignInAsync("wade", "Wade-Admins-The-West-42", "/admin/roles?role=sales_rep");

        await Assertions.Expect(page.Locator("#privilege-grid")).ToBeVisibleAsync();
        Assert.Equal(0, await page.GetByRole(AriaRole.Button, new() { Name = "Clone role" }).CountAsync());
        Assert.Equal(0, await page.GetByRole(AriaRole.Button, new() { Name = "Set row or column" }).CountAsync());
        await AdminSite.ScreenshotAsync(page, "role-grid-read-only");
    }
}
