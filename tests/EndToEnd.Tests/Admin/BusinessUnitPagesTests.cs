using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// The business-unit tree in headless Chromium (issue 13): dave creates a unit with the parent picker, renames it, moves
/// it, is refused deleting a unit that still has people, deletes the empty one after confirming; wade, who may only view
/// units, sees the tree without the forms. Screenshots kept, axe checked.
/// </summary>
public sealed class BusinessUnitPagesTests(AdminSite site) : IClassFixture<AdminSite>
{
    [Fact]
    public async Task A_security_admin_creates_renames_moves_and_deletes_a_business_unit_in_the_tree()
    {
        var page = await site.SignInAsync("dave", "Dave-Guards-The-Keys-42", "/admin/business-units");
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Business units" })).ToHaveAttributeAsync("aria-current", "page");

        // The tree is reachable from the keyboard: a sub-tree folds and unfolds with Enter on its summary.
        var salesChildren = page.Locator("#under-sales");
        await Assertions.Expect(salesChildren.Locator("> summary")).ToHaveTextAsync("2 unit(s) under Sales");
        await salesChildren.Locator("> summary").FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(salesChildren).Not.ToHaveAttributeAsync("open", "");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#unit-sales-west")).ToBeVisibleAsync();

        await page.GetByLabel("Id").FillAsync("sales-north");
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("Sales North");
        await page.GetByLabel("Parent unit").SelectOptionAsync("sales");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create unit" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Created the business unit Sales North");
        await Assertions.Expect(page.Locator("#under-sales > summary")).ToHaveTextAsync("3 unit(s) under Sales");
        await Assertions.Expect(page.Locator("#under-sales")).ToContainTextAsync("Sales North");

        await page.GetByLabel("New name").FillAsync("Sales Nordics");
        await page.GetByRole(AriaRole.Button, new() { Name = "Rename" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Renamed the business unit to Sales Nordics");

        // The move picker never offers the unit itself; a move goes under the chosen unit.
        Assert.Equal(0, await page.Locator("#move-parent option[value='sales-north']").CountAsync());
        await page.GetByLabel("Move under").SelectOptionAsync("marketing");
        await page.GetByRole(AriaRole.Button, new() { Name = "Move" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Moved the business unit Sales Nordics under Marketing");
        await Assertions.Expect(page.Locator("#under-marketing")).ToContainTextAsync("Sales Nordics");
        await AdminSite.ScreenshotAsync(page, "business-units-tree");

        // A unit with people in it is not deleted: the refusal says what holds it.
        await page.GotoAsync("/admin/business-units?unit=sales-west&delete=true");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete business unit" }).ClickAsync();
        await Assertions.Expect(page.Locator("#problem")).ToContainTextAsync("user(s)");
        await AdminSite.ScreenshotAsync(page, "business-units-delete-refused");

        await page.GotoAsync("/admin/business-units?unit=sales-north");
        await page.GetByRole(AriaRole.Link, new() { Name = "Delete Sales Nordics…" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete business unit" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Deleted the business unit Sales Nordics");
        Assert.Equal(0, await page.Locator("#unit-sales-north").CountAsync());

        await page.GotoAsync("/admin/audit?target=sales-north");
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("business_unit.delete");
    }

    [Fact]
    public async Task A_business_unit_admin_who_may_only_view_units_sees_the_tree_without_the_forms()
    {
        var page = await site.SignInAsync("wade", "Wade-Admins-The-West-42", "/admin/business-units?unit=sales-west");

        await Assertions.Expect(page.Locator("#unit-sales-west")).ToBeVisibleAsync();
        Assert.Equal(0, await page.GetByRole(AriaRole.Heading, new() { Name = "Create a business unit" }).CountAsync());
        Assert.Equal(0, await page.GetByLabel("New name").CountAsync());
        Assert.Equal(0, await page.GetByRole(AriaRole.Link, new() { Name = "Delete Sales West…" }).CountAsync());
        await AdminSite.ScreenshotAsync(page, "business-units-view-only");
    }
}
