using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>The OIDC clients page in headless Chromium, as dave the security admin and wade the business-unit admin.</summary>
public sealed class ClientPagesTests(AdminSite site) : IClassFixture<AdminSite>
{
    [Fact]
    public async Task A_security_admin_registers_edits_rotates_and_deletes_a_client_on_the_page()
    {
        var page = await site.SignInAsync("dave", "Dave-Guards-The-Keys-42", "/admin/clients");
        await Assertions.Expect(page.Locator("#clients tr", new() { HasText = "demo-crm" })).ToContainTextAsync("admin");

        await page.GetByLabel("Client id").FillAsync("partner-portal");
        await page.GetByLabel("Display name").FillAsync("Partner portal");
        await page.GetByLabel("First party (no consent page)").UncheckAsync();
        await page.GetByLabel("refresh_token").CheckAsync();
        await page.GetByLabel("profile", new() { Exact = true }).CheckAsync();
        await page.Locator("#redirect-uris").FillAsync("https://partners.example.com/signin-oidc");
        await page.GetByLabel("Require pushed authorization requests (PAR, RFC 9126)").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Register client" }).ClickAsync();

        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Registered the client 'partner-portal'");
        var secret = await page.GetByLabel("Client secret").InputValueAsync();
        Assert.True(secret.Length >= 43, secret);
        await AdminSite.ScreenshotAsync(page, "clients-secret-shown-once");
        await page.GotoAsync("/admin/clients");
        Assert.DoesNotContain(secret, await page.ContentAsync(), StringComparison.Ordinal);
        var row = page.Locator("#clients tr", new() { HasText = "partner-portal" });
        await Assertions.Expect(row).ToContainTextAsync("confidential, third party");
        await Assertions.Expect(row).ToContainTextAsync("authorization_code, refresh_token");

        await page.GetByRole(AriaRole.Link, new() { Name = "Edit client partner-portal" }).ClickAsync();
        await page.GetByLabel("Display name").FillAsync("Partner portal (EU)");
        await page.Locator("#redirect-uris").FillAsync("https://partners.example.com/signin-oidc#x");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save client" }).ClickAsync();
        await Assertions.Expect(page.Locator("#problem")).ToContainTextAsync("fragment");
        await Assertions.Expect(page.Locator("#redirect-uris")).ToHaveAttributeAsync("aria-invalid", "true");
        await AdminSite.ScreenshotAsync(page, "clients-edit-refused");
        await page.Locator("#redirect-uris").FillAsync("https://partners.example.com/signin-oidc");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save client" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the client 'partner-portal'");
        await Assertions.Expect(row).ToContainTextAsync("Partner portal (EU)");

        await page.GetByRole(AriaRole.Link, new() { Name = "Rotate secret of client partner-portal" }).ClickAsync();
        await page.GetByLabel("The old secret keeps working for").SelectOptionAsync("1h");
        await page.GetByRole(AriaRole.Button, new() { Name = "Make a new secret" }).ClickAsync();
        await Assertions.Expect(page.Locator("#new-secret")).ToContainTextAsync("The old secret keeps working until");
        var rotated = await page.GetByLabel("Client secret").InputValueAsync();
        Assert.NotEqual(secret, rotated);
        await page.GetByRole(AriaRole.Button, new() { Name = "Copy" }).ClickAsync();
        await Assertions.Expect(page.Locator("#copy-status")).Not.ToBeEmptyAsync();
        await AdminSite.ScreenshotAsync(page, "clients-secret-rotated");

        await page.GotoAsync("/admin/clients");
        await page.GetByRole(AriaRole.Link, new() { Name = "Delete client partner-portal" }).ClickAsync();
        await Assertions.Expect(page.Locator("#confirm-delete-title")).ToContainTextAsync("Delete client partner-portal?");
        await AdminSite.ScreenshotAsync(page, "clients-delete-confirmation");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete client" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Deleted the client 'partner-portal'");
        await Assertions.Expect(page.Locator("#clients tr", new() { HasText = "partner-portal" })).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task A_business_unit_admin_cannot_manage_clients()
    {
        var page = await site.SignInAsync("wade", "Wade-Admins-The-West-42", "/admin/users");
        var response = await page.GotoAsync("/admin/clients");

        await AdminSite.ScreenshotAsync(page, "clients-refused-business-unit-admin");
        Assert.Equal(403, response!.Status);
        Assert.Equal(0, await page.GetByRole(AriaRole.Button, new() { Name = "Register client" }).CountAsync());
    }
}
