using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmSecurity.EndToEnd.Tests.Admin;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Review;

/// <summary>The reviewer queue in headless Chromium: an auditor triages a finding, a security admin cannot.</summary>
public sealed class ReviewQueueTests(AdminSite site) : IClassFixture<AdminSite>
{
    private const string CarolPassword = "Carol-Reads-The-Logs-42";
    private const string DavePassword = "Dave-Guards-The-Keys-42";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_auditor_opens_a_pseudonymous_finding_reveals_the_user_and_dismisses_it_and_a_security_admin_is_refused()
    {
        await PostNightExportAsync("nina");
        var page = await site.SignInAsync("carol", CarolPassword, "/review");
        var rows = page.Locator("#queue tbody tr");
        for (var attempt = 0; attempt < 60 && await rows.CountAsync() == 0; attempt++)
        {
            await Task.Delay(500, Cancel);
            await page.ReloadAsync();
        }

        var row = rows.First;
        await Assertions.Expect(row).ToContainTextAsync("user-");
        await Assertions.Expect(row).Not.ToContainTextAsync("nina");
        await Assertions.Expect(row).ToContainTextAsync("bulk_export");
        await AdminSite.ScreenshotAsync(page, "review-queue");
        var id = await row.GetAttributeAsync("data-finding");

        await row.GetByRole(AriaRole.Link, new() { Name = "bulk_export" }).ClickAsync();
        await Assertions.Expect(page.Locator("#evidence")).ToContainTextAsync("48,000");
        await Assertions.Expect(page.Locator("#reasons")).ToContainTextAsync("48,000");
        await Assertions.Expect(page.Locator("main")).Not.ToContainTextAsync("nina");
        await AdminSite.ScreenshotAsync(page, "review-finding");

        await page.GetByLabel("Why you need to know who this is (recorded in the audit trail)").FillAsync("quarter-end check with sales ops");
        await page.GetByRole(AriaRole.Button, new() { Name = "Reveal the user (audited)" }).ClickAsync();
        await Assertions.Expect(page.Locator("#revealed")).ToContainTextAsync("nina");

        await page.GetByLabel("Move to").SelectOptionAsync("dismissed");
        await page.GetByLabel("Disposition").SelectOptionAsync("false_positive");
        await page.GetByLabel("Note", new() { Exact = true }).FillAsync("quarter-end export agreed with sales ops");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Moved to dismissed.");
        await Assertions.Expect(page.Locator("#status")).ToHaveTextAsync("dismissed (false_positive)");
        await Assertions.Expect(page.Locator("#notes")).ToContainTextAsync("quarter-end export agreed with sales ops");

        var dave = await site.SignInAsync("dave", DavePassword, "/review");
        var token = await dave.Locator("input[name=__RequestVerificationToken]").First.GetAttributeAsync("value");
        await dave.GotoAsync($"/review/findings/{id}");
        Assert.Equal(0, await dave.GetByRole(AriaRole.Button, new() { Name = "Reveal the user (audited)" }).CountAsync());
        var refused = await dave.APIRequest.PostAsync($"/review/findings/{id}?handler=Reveal", new()
        {
            Form = dave.APIRequest.CreateFormData().Set("__RequestVerificationToken", token!).Set("RevealReason", "curious"),
            MaxRedirects = 0,
        });
        Assert.Equal(403, refused.Status);
        Assert.DoesNotContain("nina", await refused.TextAsync(), StringComparison.Ordinal);
    }

    /// <summary>A login and a 48,000-row contact export at 03:00 UTC yesterday, sent as demo-crm (client credentials, RFC 6749 §4.4).</summary>
    private async Task PostNightExportAsync(string user)
    {
        using var http = new HttpClient { BaseAddress = site.BaseAddress };
        using var tokenRequest = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "events:write" }),
        };
        tokenRequest.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("demo-crm:demo-crm-secret")));
        using var tokenResponse = await http.SendAsync(tokenRequest, Cancel);
        var tokenBody = await tokenResponse.Content.ReadAsStringAsync(Cancel);
        Assert.True(tokenResponse.IsSuccessStatusCode, tokenBody);
        var token = JsonDocument.Parse(tokenBody).RootElement.GetProperty("access_token").GetString();

        var night = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(3);
        string At(DateTime time) => time.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var lines = $"{{\"event_id\":\"e2e-1\",\"timestamp\":\"{At(night)}\",\"user_id\":\"{user}\",\"action\":\"login\"}}\n" +
            $"{{\"event_id\":\"e2e-2\",\"timestamp\":\"{At(night.AddMinutes(4))}\",\"user_id\":\"{user}\",\"action\":\"export\",\"entity\":\"contact\",\"record_count\":48000}}";
        using var request = new HttpRequestMessage(HttpMethod.Post, "analyzer/events") { Content = new StringContent(lines, Encoding.UTF8, "application/x-ndjson") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request, Cancel);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Cancel));
    }
}
