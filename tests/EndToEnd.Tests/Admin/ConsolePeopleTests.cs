using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// The security admin (dave) at his daily tasks in headless Chromium (issue 13): a leaver's last working day set with the
/// date picker, a new field security profile created and given to a person, record shares looked at; screenshots kept.
/// </summary>
public sealed class ConsolePeopleTests(AdminSite site) : IClassFixture<AdminSite>
{
    [Fact]
    public async Task A_security_admin_sets_a_termination_date_and_assigns_a_new_field_security_profile()
    {
        var page = await site.SignInAsync("dave", "Dave-Guards-The-Keys-42", "/admin/users");
        await page.GetByRole(AriaRole.Link, new() { Name = "alice", Exact = true }).ClickAsync();

        // A last working day before the hire date is refused on the page, naming the field.
        await page.GetByLabel("Hired").FillAsync("2022-02-01");
        await page.GetByLabel("Last working day").FillAsync("2021-12-31");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save dates" }).ClickAsync();
        await Assertions.Expect(page.Locator("#problem")).ToContainTextAsync("before hired");
        await Assertions.Expect(page.GetByLabel("Last working day")).ToHaveAttributeAsync("aria-invalid", "true");

        await page.GetByLabel("Hired").FillAsync("2022-02-01");
        await page.GetByLabel("Last working day").FillAsync("2026-11-30");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save dates" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the hire and termination dates of alice");
        await Assertions.Expect(page.Locator("#terminated-value")).ToHaveTextAsync("2026-11-30");
        await Assertions.Expect(page.Locator("tr", new() { HasText = "Alice" }).First).ToContainTextAsync("2026-11-30");

        await page.GotoAsync("/admin/field-security");
        await page.GetByLabel("Id").FillAsync("leaver_review");
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("Leaver review");
        await page.GetByLabel("Description").FillAsync("Reads contact e-mail addresses masked while a leaver's access is reviewed.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create profile" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Created the field security profile Leaver review");
        await page.GetByLabel("contact email grant").SelectOptionAsync("read");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save profile" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the field security profile");

        await page.GotoAsync("/admin/users");
        await page.GetByRole(AriaRole.Link, new() { Name = "alice", Exact = true }).ClickAsync();
        await page.GetByLabel("Leaver review").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Save field security profiles" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the field security profiles of alice");
        Assert.True(await page.GetByLabel("Leaver review").IsCheckedAsync());
        await AdminSite.ScreenshotAsync(page, "user-termination-date-and-field-security-profile");

        // The profile page names its holder, and deleting it asks first because it is assigned.
        await page.GotoAsync("/admin/field-security?profile=leaver_review");
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("Users: alice");
        await Assertions.Expect(page.GetByLabel("Also remove it from its users and teams")).ToBeVisibleAsync();
        await AdminSite.ScreenshotAsync(page, "field-security-profile-held-by");

        await page.GotoAsync("/admin/audit?action=user.employment");
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("2026-11-30");
    }

    [Fact]
    public async Task A_business_unit_admin_sees_no_one_outside_his_unit_on_the_user_page()
    {
        var page = await site.SignInAsync("wade", "Wade-Admins-The-West-42", "/admin/users");

        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "alice", Exact = true })).ToBeVisibleAsync();
        Assert.Equal(0, await page.GetByRole(AriaRole.Link, new() { Name = "ed", Exact = true }).CountAsync());
        await page.GotoAsync("/admin/shares");
        await AdminSite.ScreenshotAsync(page, "record-shares-business-unit-admin");
        await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("Record shares");
    }
}
