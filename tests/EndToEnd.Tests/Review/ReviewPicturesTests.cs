using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmSecurity.EndToEnd.Tests.Admin;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Review;

/// <summary>
/// The auditor's pictures in headless Chromium: carol opens the riskiest users, a user's page and a finding's page; each
/// picture is there, says in words what it shows, names the user only by pseudonym, and passes axe in both colour schemes.
/// </summary>
public sealed class ReviewPicturesTests(AdminSite site) : IClassFixture<AdminSite>
{
    private const string CarolPassword = "Carol-Reads-The-Logs-42";
    private static readonly TimeZoneInfo LosAngeles = TimeZoneInfo.FindSystemTimeZoneById("America/Los_Angeles");

    // Events name users by the directory's user id, as the demo's CRM does; the directory gives alice her time zone.
    private static readonly string Alice = CrmSecurity.Identity.Contracts.IdentityDemo.People.Single(p => p.UserName == "alice").UserId;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_auditor_sees_the_riskiest_users_and_the_pictures_of_a_user_and_a_finding()
    {
        // alice (America/Los_Angeles in the demo directory): three weeks of ordinary daytime reads, then 48,000
        // contacts exported at 02:24 her time yesterday.
        var yesterday = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(DateTimeOffset.UtcNow, LosAngeles).DateTime).AddDays(-1);
        await PostAsync(Ordinary(Alice, yesterday, 21).Concat(Night(Alice, yesterday)));

        var page = await site.SignInAsync("carol", CarolPassword, "/review/users");
        var rows = page.Locator("#riskiest tbody tr");
        for (var attempt = 0; attempt < 60 && await rows.CountAsync() == 0; attempt++)
        {
            await Task.Delay(500, Cancel);
            await page.ReloadAsync();
        }

        var row = rows.First;
        await Assertions.Expect(row).ToContainTextAsync("user-");
        await Assertions.Expect(row.Locator(".badge")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("main")).Not.ToContainTextAsync(new System.Text.RegularExpressions.Regex($"alice|{System.Text.RegularExpressions.Regex.Escape(Alice)}"));
        await Assertions.Expect(page.Locator("#riskiest th[aria-sort=descending]")).ToContainTextAsync("Highest open severity");
        await Assertions.Expect(page.GetByRole(AriaRole.Navigation, new() { Name = "Review" }).GetByRole(AriaRole.Link, new() { Name = "Riskiest users" }))
            .ToHaveAttributeAsync("aria-current", "page");
        await AdminSite.ScreenshotAsync(page, "review-riskiest-users");
        await page.Locator("#sort-score").ClickAsync();
        await Assertions.Expect(page.Locator("#riskiest th[aria-sort=descending]")).ToContainTextAsync("Score sum");
        var pseudonym = await rows.First.GetAttributeAsync("data-user");

        await rows.First.GetByRole(AriaRole.Link, new() { Name = pseudonym! }).ClickAsync();
        await Assertions.Expect(page.Locator("h1")).ToContainTextAsync(pseudonym!);
        await AssertPictureAsync(page, "daily-volume", pseudonym!, "48,000 on ");
        await AssertPictureAsync(page, "hour-of-week", pseudonym!, "user's own local time");
        await Assertions.Expect(page.Locator("#daily-volume-desc")).ToContainTextAsync("Typical ");
        await Assertions.Expect(page.Locator("main")).Not.ToContainTextAsync(new System.Text.RegularExpressions.Regex($"alice|{System.Text.RegularExpressions.Regex.Escape(Alice)}"));
        await AdminSite.ScreenshotAsync(page, "review-user-pictures");

        await page.Locator("#timeline tbody tr").Filter(new() { HasText = "bulk_export" }).First.GetByRole(AriaRole.Link).ClickAsync();
        var utc = Local(yesterday, 2, 24).UtcDateTime.ToString("HH:mm", CultureInfo.InvariantCulture);
        await AssertPictureAsync(page, "finding-day", pseudonym!, $"export of 48,000 record(s) at 02:24 local ({utc} UTC)");
        await AssertPictureAsync(page, "daily-volume", pseudonym!, "48,000 on ");
        await AssertPictureAsync(page, "hour-of-week", pseudonym!, "Busiest hour");
        await Assertions.Expect(page.Locator("#finding-day .bar-flagged")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("main")).Not.ToContainTextAsync(new System.Text.RegularExpressions.Regex($"alice|{System.Text.RegularExpressions.Regex.Escape(Alice)}"));
        await page.Locator("#finding-day-figure summary").ClickAsync(); // the numbers, as a table
        await Assertions.Expect(page.Locator("#finding-day-table")).ToContainTextAsync("02:00");
        await AdminSite.ScreenshotAsync(page, "review-finding-pictures");

        await page.EmulateMediaAsync(new() { ColorScheme = ColorScheme.Dark });
        await AdminSite.ScreenshotAsync(page, "review-finding-pictures-dark");
    }

    private static async Task AssertPictureAsync(IPage page, string id, string pseudonym, string said)
    {
        var svg = page.Locator($"svg#{id}");
        await Assertions.Expect(svg).ToHaveAttributeAsync("role", "img");
        await Assertions.Expect(page.GetByRole(AriaRole.Img, new() { Name = pseudonym }).And(svg)).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator($"#{id}-desc")).ToContainTextAsync(said);
        await Assertions.Expect(page.Locator($"#{id}-figure figcaption")).ToContainTextAsync(said);
    }

    private static IEnumerable<string> Ordinary(string user, DateOnly before, int days)
    {
        for (var day = before.AddDays(-days); day < before; day = day.AddDays(1))
        {
            if (day.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday)
            {
                continue;
            }

            for (var hour = 9; hour < 17; hour += 2)
            {
                var at = Local(day, hour, 10);
                yield return Line($"p-{day:yyyyMMdd}-{hour}", user, "read", at, $",\"entity\":\"contact\",\"record_count\":{40 + ((day.Day * 7) % 30)}");
            }
        }
    }

    private static IEnumerable<string> Night(string user, DateOnly day)
    {
        yield return Line("p-night-1", user, "login", Local(day, 2, 20));
        yield return Line("p-night-2", user, "export", Local(day, 2, 24), ",\"entity\":\"contact\",\"record_count\":48000");
    }

    private static DateTimeOffset Local(DateOnly day, int hour, int minute)
    {
        var local = day.ToDateTime(new TimeOnly(hour, minute));
        return new DateTimeOffset(local, LosAngeles.GetUtcOffset(local));
    }

    private static string Line(string id, string user, string action, DateTimeOffset at, string extra = "") =>
        $"{{\"event_id\":\"{id}\",\"timestamp\":\"{at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\",\"user_id\":\"{user}\",\"action\":\"{action}\"{extra}}}";

    /// <summary>Sends the lines as demo-crm (client credentials, RFC 6749 §4.4).</summary>
    private async Task PostAsync(IEnumerable<string> lines)
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

        using var request = new HttpRequestMessage(HttpMethod.Post, "analyzer/events") { Content = new StringContent(string.Join('\n', lines), Encoding.UTF8, "application/x-ndjson") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request, Cancel);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Cancel));
    }
}
