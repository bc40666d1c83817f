using System.Net;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Authorization.AdminConsole;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// What the red team did not try, in the authorization model and the admin API (OWASP ASVS 4.0.3 V4 access control and
/// V13 API): asking the decision API about others (IDOR), who-can-access without being an auditor, a business-unit admin
/// reaching outside his unit through teams and moves, privilege escalation through role cloning, team roles and
/// application users, and the admin pages' anti-forgery tokens and rights.
/// </summary>
public sealed class AdminReachTests(AdminConsoleHost host) : IClassFixture<AdminConsoleHost>
{
    [Fact]
    public async Task Who_can_access_answers_auditors_only()
    {
        var wade = await AdminTokenAsync(host, "wade", "openid authz.decide");
        var alice = await AdminTokenAsync(host, "alice", "openid authz.decide");
        var carol = await AdminTokenAsync(host, "carol", "openid authz.decide");

        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(host, wade, "authz/v1/who-can-access/contact?action=read")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(host, alice, "authz/v1/who-can-access/invoice/fields/bank_account")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, carol, "authz/v1/who-can-access/contact?action=read")).Status);
    }

    [Fact]
    public async Task A_users_own_token_asks_the_decision_api_about_nobody_else()
    {
        var alice = await Personas.UserTokenAsync(host, "alice", "openid authz.decide");
        var bob = DemoIds.Of("bob");

        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(host, alice, $"authz/v1/users/{bob}/profile")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(host, alice, $"authz/v1/users/{bob}/fields/contact")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(host, alice, $"authz/v1/users/{bob}/filter/contact")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await CheckAsync(host, alice, bob, "contact", "read", null)).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, alice, $"authz/v1/users/{DemoIds.Of("alice")}/profile")).Status);
    }

    [Fact]
    public async Task A_business_unit_admin_reaches_no_one_outside_his_unit_through_teams_moves_or_lookups()
    {
        var wade = await host.AdminTokenOf("wade");
        var alice = DemoIds.Of("alice");
        var ed = DemoIds.Of("ed");

        var joinEast = await PutAsync(host, wade, $"admin/api/users/{alice}/teams", new { teams = new[] { "west-sales", "east-sales" } });
        var pushOut = await PutAsync(host, wade, $"admin/api/users/{alice}/business-unit", new { business_unit = "sales-east" });
        var pullIn = await PutAsync(host, wade, $"admin/api/users/{ed}/business-unit", new { business_unit = "sales-west" });
        var eastTeamRoles = await PutAsync(host, wade, "admin/api/teams/east-sales/roles", new { roles = new[] { "sales_rep" } });
        var lookup = await GetAsync(host, wade, $"admin/api/users/{ed}");
        var list = await GetAsync(host, wade, "admin/api/users");

        Assert.Equal(HttpStatusCode.Forbidden, joinEast.Status);
        Assert.Equal(HttpStatusCode.Forbidden, pushOut.Status);
        Assert.Equal(HttpStatusCode.Forbidden, pullIn.Status);
        Assert.Equal(HttpStatusCode.Forbidden, eastTeamRoles.Status);
        Assert.Equal(HttpStatusCode.Forbidden, lookup.Status);
        Assert.DoesNotContain(list.Json.EnumerateArray(), u => u.GetProperty("user_name").GetString() == "ed");
    }

    [Fact]
    public async Task Role_cloning_and_team_or_user_roles_grant_nothing_the_admin_does_not_hold()
    {
        var secops = await SecOpsTokenAsync(host);
        var managerRole = await PostAsync(host, secops, "admin/api/roles", new
        {
            id = "role_manager", name = "Role manager",
            privileges = new { security_role = new { create = "organization", read = "organization", update = "organization" } },
        });
        Assert.True(managerRole.Status == HttpStatusCode.Created, managerRole.ToString());
        var robotUser = await PostAsync(host, secops, "admin/api/users", new { user_name = "role-robot", business_unit = "security", application_client_id = AdminConsoleHost.RobotClient });
        Assert.True(robotUser.Status == HttpStatusCode.Created, robotUser.ToString());
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync(host, secops, $"admin/api/users/{robotUser.Json.GetProperty("id").GetString()}/roles", new { roles = new[] { "role_manager" } })).Status);
        var robot = await Personas.ClientTokenAsync(host, AdminConsoleHost.RobotClient, "identity.admin", AdminConsoleHost.RobotSecret);
        var securityAdmin = (await GetAsync(host, secops, "admin/api/roles/security_admin")).Json.GetProperty("privileges");
        var wade = await host.AdminTokenOf("wade");

        var clone = await PostAsync(host, robot, "admin/api/roles", new { id = "security_admin_2", name = "Security administrator 2", privileges = securityAdmin });
        var widened = await PutAsync(host, robot, "admin/api/roles/sales_rep/privileges/contact/read", new { depth = "organization" });
        var held = await PostAsync(host, robot, "admin/api/roles", new { id = "role_viewer", name = "Role viewer", privileges = new { security_role = new { read = "organization" } } });
        var teamRole = await PutAsync(host, wade, "admin/api/teams/west-sales/roles", new { roles = new[] { "security_admin" } });
        var userRole = await PutAsync(host, wade, $"admin/api/users/{DemoIds.Of("alice")}/roles", new { roles = new[] { "sales_rep", "finance" } });

        Assert.Equal(HttpStatusCode.Forbidden, clone.Status);
        Assert.Contains("cannot grant", clone.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, widened.Status);
        Assert.Equal(HttpStatusCode.Created, held.Status);
        Assert.Equal(HttpStatusCode.Forbidden, teamRole.Status);
        Assert.Equal(HttpStatusCode.Forbidden, userRole.Status);
    }

    [Fact]
    public async Task A_business_unit_admin_cannot_bind_a_client_to_a_user_of_his_unit()
    {
        var secops = await SecOpsTokenAsync(host);
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync(host, secops, "admin/api/roles/west_user_admin/privileges/system_user/create", new { depth = "business_unit" })).Status);
        var wade = await AdminTokenAsync(host, "wade");

        var bound = await PostAsync(host, wade, "admin/api/users",
            new { user_name = "west-robot", business_unit = "sales-west", application_client_id = AdminConsoleHost.UnboundClient });
        var person = await PostAsync(host, wade, "admin/api/users",
            new { user_name = "west-temp", business_unit = "sales-west", email = "west-temp@demo.example" });

        Assert.Equal(HttpStatusCode.Forbidden, bound.Status);
        Assert.Equal(HttpStatusCode.Created, person.Status); // creating people of his unit is his job
    }

    [Fact]
    public async Task Admin_page_forms_refuse_a_post_without_the_anti_forgery_token()
    {
        using var dave = await CookieSignInAsync("dave");
        var alice = DemoIds.Of("alice");

        var forged = await dave.PostAsync(new Uri($"admin/users?handler=Roles&user={alice}", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["user"] = alice,
            ["SelectedRoles"] = "security_admin",
        }), Personas.Cancel);
        var roles = (await GetAsync(host, await SecOpsTokenAsync(host), $"admin/api/users/{alice}")).Json.GetProperty("roles");

        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.DoesNotContain(roles.EnumerateArray(), r => r.GetString() == "security_admin");
    }

    [Fact]
    public async Task Admin_pages_show_nothing_to_people_without_admin_rights_and_refuse_changes_beyond_them()
    {
        using var anonymous = host.CreateClient();
        using var alice = await CookieSignInAsync("alice");
        using var wade = await CookieSignInAsync("wade");

        var signInFirst = await anonymous.GetAsync(new Uri("admin/roles", UriKind.Relative), Personas.Cancel);
        var aliceRoles = await alice.GetAsync(new Uri("admin/roles", UriKind.Relative), Personas.Cancel);
        var aliceUsers = await alice.GetAsync(new Uri("admin/users", UriKind.Relative), Personas.Cancel);
        var grid = await wade.GetStringAsync(new Uri("admin/roles?role=sales_rep", UriKind.Relative), Personas.Cancel);
        var change = await wade.PostAsync(new Uri("admin/roles?role=sales_rep", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["role"] = "sales_rep",
            ["Cells[invoice:read]"] = "organization",
            ["__RequestVerificationToken"] = OAuthFlows.AntiForgeryToken(grid),
        }), Personas.Cancel);
        var role = (await GetAsync(host, await SecOpsTokenAsync(host), "admin/api/roles/sales_rep")).Json;

        Assert.Equal(HttpStatusCode.Redirect, signInFirst.StatusCode);
        Assert.Contains("/account/login", signInFirst.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, aliceRoles.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, aliceUsers.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, change.StatusCode);
        Assert.True(role.GetProperty("privileges").TryGetProperty("contact", out _)); // the grid was not replaced
        Assert.False(role.GetProperty("privileges").TryGetProperty("invoice", out _));
    }

    [Fact]
    public async Task A_refused_admin_or_incident_call_is_an_access_event_with_outcome_denied()
    {
        var wade = await host.AdminTokenOf("wade");
        Assert.Equal(HttpStatusCode.Forbidden, (await PutAsync(host, wade, "admin/api/roles/sales_rep/privileges/invoice/read", new { depth = "business_unit" })).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await PostAsync(host, wade, $"identity/admin/users/{DemoIds.Of("ed")}/disable", new { reason = "probing" })).Status);
        static bool RoleRefusal(Dictionary<string, object?> e) =>
            (string?)e["Privilege"] == "admin_api" && ((string)e["Details"]!).Contains("/admin/api/roles/sales_rep/privileges/invoice/read", StringComparison.Ordinal);
        static bool IncidentRefusal(Dictionary<string, object?> e) =>
            (string?)e["Privilege"] == "incident_response" && ((string)e["Details"]!).Contains("/disable", StringComparison.Ordinal);

        // Events are written in batches off the request path: wait for them (other tests of the class add refusals of their own).
        List<Dictionary<string, object?>> denied = [];
        for (var attempt = 0; attempt < 100 && !(denied.Exists(RoleRefusal) && denied.Exists(IncidentRefusal)); attempt++)
        {
            await Task.Delay(100, Personas.Cancel);
            denied = await host.QueryAsync("SELECT Privilege, Details FROM identity_access_events WHERE Action = 'admin_change' AND Outcome = 'denied' AND UserId = @wade",
                ("@wade", DemoIds.Of("wade")));
        }

        Assert.Contains(denied, RoleRefusal);
        Assert.Contains(denied, IncidentRefusal);
    }

    /// <summary>A browser signed in to the service with <paramref name="user"/>'s password (the admin pages' cookie).</summary>
    private async Task<HttpClient> CookieSignInAsync(string user)
    {
        var browser = host.CreateClient();
        var signedIn = await OAuthFlows.SubmitLoginAsync(browser, "/admin", user, Personas.Passwords[user]);
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        return browser;
    }
}
