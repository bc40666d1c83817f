using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>The audit trail viewer in headless Chromium: a change made on one admin page is found and explained on another.</summary>
public sealed class AuditViewerTests(AdminSite site) : IClassFixture<AdminSite>
{
    [Fact]
    public async Task A_security_admin_finds_his_role_change_filtered_by_action_with_its_diff_in_his_own_time_zone()
    {
        var page = await site.SignInAsync("dave", "Dave-Guards-The-Keys-42", "/admin/roles?role=marketing");
        await page.GetByLabel("Invoice (custom): read", new() { Exact = true }).SelectOptionAsync("business_unit");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save role" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the privileges of role 'Marketing'");

        await page.GetByRole(AriaRole.Navigation, new() { Name = "Administration" }).GetByRole(AriaRole.Link, new() { Name = "Audit trail" }).ClickAsync();
        await page.GetByLabel("Action").SelectOptionAsync("role.update");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await page.WaitForAddressAsync(url => url.Contains("action=role.update", StringComparison.Ordinal));

        var rows = page.Locator("#audit-entries > tbody > tr");
        var change = rows.Filter(new() { HasText = "Marketing" });
        await Assertions.Expect(change).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#verify-status")).ToContainTextAsync("Chain intact");
        Assert.Equal(await rows.CountAsync(), await rows.Filter(new() { HasText = "role.update" }).CountAsync());
        await Assertions.Expect(change).ToContainTextAsync("dave");
        var cell = change.Locator("table.diff tr", new() { HasText = "privileges.invoice.read" });
        await Assertions.Expect(cell).ToHaveClassAsync("diff-added");
        await Assertions.Expect(cell.Locator("ins")).ToHaveTextAsync("\"business_unit\"");
        await Assertions.Expect(page.Locator("#audit-entries > thead")).ToContainTextAsync("When (Europe/Berlin)");
        var time = change.Locator("time");
        Assert.EndsWith(" UTC", await time.GetAttributeAsync("title"), StringComparison.Ordinal);
        var utc = DateTimeOffset.Parse((await time.GetAttributeAsync("datetime"))!, System.Globalization.CultureInfo.InvariantCulture);
        var berlin = TimeZoneInfo.ConvertTime(utc, TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin"));
        await Assertions.Expect(time).ToHaveTextAsync(berlin.ToString("ddd d MMM yyyy, HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture));
        // The security admin role holds read on the audit trail, not export: the page says so instead of offering it.
        await Assertions.Expect(page.Locator("#export-note")).ToBeVisibleAsync();
        await AdminSite.ScreenshotAsync(page, "dave-audit-viewer");
    }

    [Fact]
    public async Task An_auditor_exports_the_filtered_trail_from_the_page_as_json_lines()
    {
        var page = await site.SignInAsync("carol", "Carol-Reads-The-Logs-42", "/admin/audit");

        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Link, new() { Name = "Export JSON Lines" }).ClickAsync());
        var path = await download.PathAsync();
        var lines = (await File.ReadAllLinesAsync(path, TestContext.Current.CancellationToken)).Where(line => line.Length > 0).ToList();

        Assert.Equal("audit-trail.jsonl", download.SuggestedFilename);
        Assert.NotEmpty(lines);
        Assert.All(lines, line => Assert.True(System.Text.Json.JsonDocument.Parse(line).RootElement.TryGetProperty("sequence", out _), line));
    }

    [Fact]
    public async Task A_user_without_read_on_the_audit_trail_is_refused_the_page()
    {
        var page = await site.SignInAsync("alice", "Alice-Sells-Widgets-42", "/account");

        var response = await page.GotoAsync("/admin/audit");

        Assert.Equal(403, response!.Status);
    }
}
