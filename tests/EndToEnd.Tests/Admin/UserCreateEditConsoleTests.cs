using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// Creating and editing people on the users page, and clients' application users on the clients page, in headless Chromium
/// (issue 13), as the people who do it: dave, the security admin, creates a person with a business unit and a manager and
/// mails her a password link, corrects her name and address (a bad address named beside its field, a stale version
/// refused with his edits kept), and gives a client an application user with a role; wade, who administers Sales West, is
/// refused when he posts the create form with a business unit outside his own. Every page is checked with axe-core and
/// kept as a screenshot.
/// </summary>
public sealed class UserCreateEditConsoleTests(AdminSite site) : IClassFixture<AdminSite>
{
    private const string DavePassword = "Dave-Guards-The-Keys-42";
    private const string WadePassword = "Wade-Admins-The-West-42";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_security_admin_creates_a_person_with_a_manager_and_a_password_link_then_edits_her_name_and_address()
    {
        var page = await site.SignInAsync("dave", DavePassword, "/admin/users");
        await page.Locator("#create-user-link").ClickAsync();
        await page.Locator("#new_user_name").FillAsync("nina");
        await page.Locator("#new_display_name").FillAsync("Nina New");
        await page.Locator("#new_email").FillAsync("nina@staff.example");
        await page.Locator("#new_business_unit").SelectOptionAsync("sales-west");
        await page.Locator("#new_manager").SelectOptionAsync(new SelectOptionValue { Label = "Bob Manager (bob)" });
        await page.Locator("#send_link").CheckAsync();
        await AdminSite.ScreenshotAsync(page, "users-create-form");
        await page.Locator("#create-user").ClickAsync();

        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Created nina in Sales West.");
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Sent a one-time link to choose a password to nina@staff.example");
        await Assertions.Expect(page.Locator("#user-title")).ToHaveTextAsync("Nina New (nina)");
        await Assertions.Expect(page.Locator("#selected-unit")).ToHaveTextAsync("Sales West");
        await Assertions.Expect(page.Locator("#selected-manager")).ToContainTextAsync("Bob Manager (bob)");
        Assert.DoesNotContain("token=", await page.ContentAsync(), StringComparison.Ordinal);
        await AdminSite.ScreenshotAsync(page, "users-created-and-selected");
        var userAddress = page.Url;

        // A bad address: refused, named beside its field, what was typed kept.
        await page.Locator("#profile_email").FillAsync("nina at staff");
        await page.Locator("#save-profile").ClickAsync();
        await Assertions.Expect(page.Locator("#profile-email-error")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#profile_email")).ToHaveAttributeAsync("aria-invalid", "true");
        await Assertions.Expect(page.Locator("#profile_email")).ToHaveValueAsync("nina at staff");
        await AdminSite.ScreenshotAsync(page, "users-profile-bad-email");

        await page.Locator("#profile_display_name").FillAsync("Nina Renamed");
        await page.Locator("#profile_email").FillAsync("nina.renamed@staff.example");
        await page.Locator("#save-profile").ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the name and e-mail address of nina");
        await Assertions.Expect(page.Locator("#user-facts")).ToContainTextAsync("nina.renamed@staff.example");

        // Two tabs on the same person: the second one's save is refused with its version named, and its edits stay in the form.
        var stale = await page.Context.NewPageAsync();
        await stale.GotoAsync(userAddress);
        await page.Locator("#profile_display_name").FillAsync("Nina First Tab");
        await page.Locator("#save-profile").ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the name and e-mail address of nina");
        await stale.Locator("#profile_display_name").FillAsync("Nina Second Tab");
        await stale.Locator("#save-profile").ClickAsync();
        await Assertions.Expect(stale.Locator("#profile-conflict")).ToContainTextAsync("changed by someone else");
        await Assertions.Expect(stale.Locator("#profile_display_name")).ToHaveValueAsync("Nina Second Tab");
        await Assertions.Expect(stale.Locator("#user-title")).ToHaveTextAsync("Nina First Tab (nina)");
        await AdminSite.ScreenshotAsync(stale, "users-profile-stale-version");

        await page.GotoAsync("/admin/audit?action=user.create");
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("nina");
        await page.GotoAsync("/admin/audit?action=user.profile");
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("nina.renamed@staff.example");
    }

    [Fact]
    public async Task A_business_unit_admin_creates_in_his_unit_and_is_refused_when_he_forges_another_unit_into_the_form()
    {
        using var api = new HttpClient { BaseAddress = site.BaseAddress };
        var token = await SecOpsTokenAsync(api);
        await GrantWestAdminsCreateAsync(api, token);

        var page = await site.SignInAsync("wade", WadePassword, "/admin/users");
        await page.Locator("#create-user-link").ClickAsync();
        Assert.Equal(["sales-west"], await page.Locator("#new_business_unit option").EvaluateAllAsync<string[]>("options => options.map(o => o.value)"));
        Assert.Equal(0, await page.Locator("#new_manager option", new() { HasText = "Ed East" }).CountAsync());

        // The attack: the picker offers Sales West only, so the form is edited to post Sales East.
        await page.Locator("#new_user_name").FillAsync("mallory-east");
        await page.Locator("#new_email").FillAsync("mallory@staff.example");
        await page.Locator("#new_business_unit option").EvaluateAsync("option => option.value = 'sales-east'");
        var refused = await page.RunAndWaitForResponseAsync(() => page.Locator("#create-user").ClickAsync(),
            response => response.Request.Method == "POST" && response.Url.Contains("/admin/users", StringComparison.Ordinal));
        Assert.Equal(403, refused.Status);
        await Assertions.Expect(page.Locator("#problem")).ToContainTextAsync("Sales East");
        await AdminSite.ScreenshotAsync(page, "users-create-refused-outside-unit");
        Assert.False(await UserExistsAsync(api, token, "mallory-east"));

        // Inside his unit it works.
        await page.GotoAsync("/admin/users?create=1");
        await page.Locator("#new_user_name").FillAsync("walt");
        await page.Locator("#new_email").FillAsync("walt@staff.example");
        await page.Locator("#create-user").ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Created walt in Sales West.");
        Assert.True(await UserExistsAsync(api, token, "walt"));
    }

    [Fact]
    public async Task A_security_admin_sees_each_clients_application_user_and_gives_a_client_one_with_a_role()
    {
        var page = await site.SignInAsync("dave", DavePassword, "/admin/clients");
        await Assertions.Expect(page.Locator("#app-user-demo-secops")).ToContainTextAsync("demo-secops-app");
        await Assertions.Expect(page.Locator("#app-user-demo-secops")).ToContainTextAsync("roles:");
        await Assertions.Expect(page.Locator("#app-user-demo-audit")).ToContainTextAsync("none");
        await AdminSite.ScreenshotAsync(page, "clients-application-users");

        await page.GetByRole(AriaRole.Link, new() { Name = "Create an application user for client demo-audit" }).ClickAsync();
        await page.Locator("#app_business_unit").SelectOptionAsync("compliance");
        await AdminSite.ScreenshotAsync(page, "clients-application-user-form");
        await page.Locator("#create-app-user").ClickAsync();

        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Created demo-audit-app, the application user of client 'demo-audit'");
        await Assertions.Expect(page.Locator("#user-facts")).ToContainTextAsync("demo-audit");
        await page.Locator("#role-sales_rep").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Save roles" }).ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Saved the roles of demo-audit-app");

        await page.GotoAsync("/admin/clients");
        await Assertions.Expect(page.Locator("#app-user-demo-audit")).ToContainTextAsync("Compliance");
        await Assertions.Expect(page.Locator("#app-user-demo-audit")).ToContainTextAsync("Sales representative");
        await AdminSite.ScreenshotAsync(page, "clients-application-user-with-role");
    }

    /// <summary>The demo's Sales West administrator role may not create users; dave's colleague gives it create at business-unit depth.</summary>
    private static async Task GrantWestAdminsCreateAsync(HttpClient api, string token)
    {
        using var get = new HttpRequestMessage(HttpMethod.Get, "admin/api/roles/west_user_admin");
        get.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var role = await api.SendAsync(get, Cancel);
        using var put = new HttpRequestMessage(HttpMethod.Put, "admin/api/roles/west_user_admin/privileges/system_user/create")
        {
            Content = JsonContent.Create(new { depth = "business_unit" }),
        };
        put.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        put.Headers.TryAddWithoutValidation("If-Match", role.Headers.ETag!.Tag);
        using var granted = await api.SendAsync(put, Cancel);
        Assert.True(granted.IsSuccessStatusCode, $"grant: {(int)granted.StatusCode} {await granted.Content.ReadAsStringAsync(Cancel)}");
    }

    private static async Task<bool> UserExistsAsync(HttpClient api, string token, string userName)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"admin/api/users?q={userName}&kind=all");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await api.SendAsync(request, Cancel);
        var users = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        return users.EnumerateArray().Any(u => u.GetProperty("user_name").GetString() == userName);
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
}
