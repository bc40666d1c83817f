using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// The users and teams console in headless Chromium (issue 13), as the people who use it: dave, the security admin, searches
/// a directory larger than a page, pages through it, sorts it, disables, unlocks and resets the second factor of a person
/// after a confirmation step each, and creates a team with a member and a role; wade, who administers Sales West only, finds
/// nobody and no team of Sales East. Every page is checked with axe-core and kept as a screenshot.
/// </summary>
public sealed class UsersTeamsConsoleTests(AdminSite site) : IClassFixture<AdminSite>
{
    private const string DavePassword = "Dave-Guards-The-Keys-42";
    private const string StaffPassword = "Console-Staff-Password-42";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_security_admin_searches_pages_and_sorts_users_then_disables_unlocks_and_resets_a_second_factor_after_confirming()
    {
        using var api = new HttpClient { BaseAddress = site.BaseAddress };
        var token = await SecOpsTokenAsync(api);
        for (var i = 0; i < 30; i++)
        {
            await CreateUserAsync(api, token, $"staff-{i:00}", $"Staff Member {i:00}", i == 7 ? StaffPassword : null);
        }

        // Five wrong passwords lock staff-07 out (Identity:Lockout:MaxFailedAttempts).
        var attacker = await (await site.NewContextAsync()).NewPageAsync();
        for (var attempt = 0; attempt < 5; attempt++)
        {
            await attacker.GotoAsync("/account/login");
            await attacker.Locator("#username").FillAsync("staff-07");
            await attacker.Locator("#password").FillAsync("not-the-password-" + attempt);
            await attacker.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
            await Assertions.Expect(attacker.Locator("#login-error")).ToBeVisibleAsync();
        }

        var page = await site.SignInAsync("dave", DavePassword, "/admin/users");

        // Search: 30 matches, 25 to a page, the second page holds the last five.
        await page.GetByLabel("Search", new() { Exact = true }).FillAsync("staff");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#users caption")).ToContainTextAsync("30 users you may view matching “staff”, page 1 of 2");
        await Assertions.Expect(page.Locator("#users tbody tr")).ToHaveCountAsync(25);
        await AdminSite.ScreenshotAsync(page, "users-search-page-1");
        await page.GetByRole(AriaRole.Link, new() { Name = "Next page" }).ClickAsync();
        await Assertions.Expect(page.Locator("#users tbody tr")).ToHaveCountAsync(5);
        await Assertions.Expect(page.Locator("#users tbody tr").First).ToContainTextAsync("staff-25");

        // Sort by name, then the other way round: the header says which (aria-sort).
        var nameHeader = page.Locator("#users thead th", new() { HasText = "Name" });
        await Assertions.Expect(nameHeader).ToHaveAttributeAsync("aria-sort", "none");
        await nameHeader.GetByRole(AriaRole.Link).ClickAsync();
        await Assertions.Expect(nameHeader).ToHaveAttributeAsync("aria-sort", "ascending");
        await nameHeader.GetByRole(AriaRole.Link).ClickAsync();
        await Assertions.Expect(page.Locator("#users thead th[aria-sort=descending]")).ToContainTextAsync("Name");
        await Assertions.Expect(page.Locator("#users tbody tr").First).ToContainTextAsync("staff-29");

        // The locked person is shown locked, found by status, and unlocked after a confirmation step.
        await page.GotoAsync("/admin/users?q=staff&status=locked");
        await Assertions.Expect(page.Locator("#locked-staff-07")).ToHaveTextAsync("locked");
        await Assertions.Expect(page.Locator("#users tbody tr")).ToHaveCountAsync(1);
        await page.GetByRole(AriaRole.Link, new() { Name = "staff-07", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#selected-locked")).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Unlock…" }).ClickAsync();
        await Assertions.Expect(page.Locator("#confirm-title")).ToHaveTextAsync("Unlock staff-07?");
        await AdminSite.ScreenshotAsync(page, "user-unlock-confirmation");
        await page.GetByRole(AriaRole.Button, new() { Name = "Unlock staff-07" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Unlocked staff-07");
        await Assertions.Expect(page.Locator("#selected-locked")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#no-users")).ToBeVisibleAsync(); // nobody of "staff" is locked any more

        // Disable: nothing happens until the confirmation's own button.
        await page.GotoAsync("/admin/users?q=staff-03");
        await page.GetByRole(AriaRole.Link, new() { Name = "staff-03", Exact = true }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Disable…" }).ClickAsync();
        await Assertions.Expect(page.Locator("#selected-status")).ToHaveTextAsync("active");
        await page.GetByRole(AriaRole.Button, new() { Name = "Disable staff-03" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Disabled staff-03");
        await Assertions.Expect(page.Locator("#status-staff-03")).ToHaveTextAsync("disabled");
        await Assertions.Expect(page.Locator("#selected-status")).ToHaveTextAsync("disabled");
        await AdminSite.ScreenshotAsync(page, "user-disabled");

        // Reset the second factor, after confirming.
        await page.GetByRole(AriaRole.Link, new() { Name = "Reset two-step verification…" }).ClickAsync();
        await Assertions.Expect(page.Locator("#confirm-form")).ToContainTextAsync("every passkey");
        await page.GetByRole(AriaRole.Button, new() { Name = "Reset two-step verification of staff-03" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Reset the two-step verification of staff-03");

        await page.GotoAsync("/admin/audit?target=staff-03");
        await Assertions.Expect(page.Locator("#audit-entries")).ToContainTextAsync("user.disable");
        await Assertions.Expect(page.Locator("#audit-entries")).ToContainTextAsync("user.reset_mfa");
        await page.GotoAsync("/admin/audit?target=staff-07");
        await Assertions.Expect(page.Locator("#audit-entries")).ToContainTextAsync("user.unlock");
    }

    [Fact]
    public async Task A_security_admin_creates_a_team_gives_it_a_member_found_with_the_picker_and_a_role()
    {
        var page = await site.SignInAsync("dave", DavePassword, "/admin/teams");

        await page.GetByLabel("Id").FillAsync("key-accounts-west");
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("Key accounts West");
        await page.GetByLabel("Owning business unit").SelectOptionAsync("sales-west");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create team" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Created the team Key accounts West in Sales West");
        await Assertions.Expect(page.Locator("#no-members")).ToBeVisibleAsync();

        await page.GetByRole(AriaRole.Searchbox, new() { Name = "Find a person to add" }).FillAsync("alice");
        await page.GetByRole(AriaRole.Button, new() { Name = "Find", Exact = true }).ClickAsync();
        await page.GetByLabel("Alice Sales (alice)").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Add member" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Added alice to the team Key accounts West");
        await Assertions.Expect(page.Locator("#members")).ToContainTextAsync("Alice Sales");

        await page.GetByLabel("Sales representative").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Save team roles" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the roles of the team Key accounts West");
        await Assertions.Expect(page.Locator("#teams tr", new() { HasText = "Key accounts West" })).ToContainTextAsync("Sales representative");
        Assert.True(await page.GetByLabel("Sales representative").IsCheckedAsync());
        await AdminSite.ScreenshotAsync(page, "team-created-with-member-and-role");

        // Deleting asks first.
        await page.GetByRole(AriaRole.Link, new() { Name = "Delete Key accounts West…" }).ClickAsync();
        await Assertions.Expect(page.Locator("#confirm-title")).ToHaveTextAsync("Delete Key accounts West?");
        await AdminSite.ScreenshotAsync(page, "team-delete-confirmation");

        await page.GotoAsync("/admin/audit?target=key-accounts-west");
        await Assertions.Expect(page.Locator("#audit-entries")).ToContainTextAsync("team.members");
        await Assertions.Expect(page.Locator("#audit-entries")).ToContainTextAsync("team.roles");
    }

    [Fact]
    public async Task A_business_unit_admin_finds_no_one_and_no_team_outside_his_unit()
    {
        using var api = new HttpClient { BaseAddress = site.BaseAddress };
        var ed = await UserIdAsync(api, await SecOpsTokenAsync(api), "ed");
        var page = await site.SignInAsync("wade", "Wade-Admins-The-West-42", "/admin/users");

        await page.GotoAsync("/admin/users?q=ed%40demo.example&kind=all");
        await Assertions.Expect(page.Locator("#no-users")).ToBeVisibleAsync();
        await page.GotoAsync($"/admin/users?user={ed}");
        await Assertions.Expect(page.Locator("#user-panel")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#users")).Not.ToContainTextAsync("Ed East");
        await AdminSite.ScreenshotAsync(page, "users-business-unit-admin-no-one-outside");

        await page.GotoAsync("/admin/teams?team=east-sales");
        await Assertions.Expect(page.Locator("#teams")).ToContainTextAsync("Sales West team");
        await Assertions.Expect(page.Locator("#teams")).Not.ToContainTextAsync("Sales East team");
        await Assertions.Expect(page.Locator("#team-panel")).ToHaveCountAsync(0);
        Assert.Equal(0, await page.GetByRole(AriaRole.Heading, new() { Name = "Create a team" }).CountAsync());

        // His own team: the picker finds nobody of Sales East to add.
        await page.GotoAsync("/admin/teams?team=west-sales&member_q=ed%40demo.example");
        await Assertions.Expect(page.Locator("#no-candidates")).ToBeVisibleAsync();
        await AdminSite.ScreenshotAsync(page, "teams-business-unit-admin-refused-outside");
    }

    private static async Task<string> SecOpsTokenAsync(HttpClient api)
    {
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = "demo-secops",
            ["client_secret"] = "demo-secops-secret",
            ["scope"] = "identity.admin",
        });
        using var response = await api.PostAsync(new Uri("connect/token", UriKind.Relative), form, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.IsSuccessStatusCode, $"token: {body}");
        return body.GetProperty("access_token").GetString()!;
    }

    private static async Task CreateUserAsync(HttpClient api, string token, string name, string displayName, string? password)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "admin/api/users")
        {
            Content = JsonContent.Create(new { user_name = name, display_name = displayName, email = name + "@staff.example", business_unit = "sales-east", password }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await api.SendAsync(request, Cancel);
        Assert.True(response.IsSuccessStatusCode, $"create {name}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Cancel)}");
    }

    private static async Task<string> UserIdAsync(HttpClient api, string token, string userName)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"admin/api/users?q={userName}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await api.SendAsync(request, Cancel);
        var users = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        return users.EnumerateArray().Single(u => u.GetProperty("user_name").GetString() == userName).GetProperty("id").GetString()!;
    }
}
