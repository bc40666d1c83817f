using System.Net;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Authorization.AdminConsole;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// Red-team finding 5: incident response bypassed the model and the audit trail. Disable and enable went through
/// UserManager, so the decision API kept allowing a disabled user and a disabled application user kept making admin
/// writes; nothing reached the hash chain; any client token with identity.admin counted as admin; a demoted admin kept
/// incident powers because a <c>role</c> claim in an old token decided. Now every incident call goes through the admin
/// guard, the model change and the audited path of the admin API.
/// </summary>
public sealed class IncidentResponseTests(AdminConsoleHost host) : IClassFixture<AdminConsoleHost>
{
    [Fact]
    public async Task After_disable_the_decision_api_denies_the_user_at_once_and_after_enable_allows_again()
    {
        var secops = await SecOpsTokenAsync(host);
        var crm = await CrmDecisionTokenAsync(host);
        var grace = DemoIds.Of("grace");
        var before = await CheckAsync(host, crm, grace, "campaign", "read", null);

        var disabled = await PostAsync(host, secops, $"identity/admin/users/{grace}/disable", new { reason = "phished" });
        var during = await CheckAsync(host, crm, grace, "campaign", "read", null);
        var enabled = await PostAsync(host, secops, $"identity/admin/users/{grace}/enable", new { reason = "new password set" });
        var after = await CheckAsync(host, crm, grace, "campaign", "read", null);

        Assert.True(before.Allowed, before.ToString());
        Assert.Equal(HttpStatusCode.OK, disabled.Status);
        Assert.False(during.Allowed, during.ToString());
        Assert.Equal("disabled_user", during.Basis);
        Assert.Equal(HttpStatusCode.OK, enabled.Status);
        Assert.True(after.Allowed, after.ToString());
    }

    [Fact]
    public async Task A_disabled_application_user_makes_no_admin_write_with_the_token_it_already_holds()
    {
        var secops = await SecOpsTokenAsync(host);
        var created = await PostAsync(host, secops, "admin/api/users",
            new { user_name = "ops-robot-app", business_unit = "security", application_client_id = AdminConsoleHost.RobotClient });
        Assert.True(created.Status == HttpStatusCode.Created, created.ToString());
        var appUser = created.Json.GetProperty("id").GetString()!;
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync(host, secops, $"admin/api/users/{appUser}/roles", new { roles = new[] { "security_admin" } })).Status);
        var robot = await Personas.ClientTokenAsync(host, AdminConsoleHost.RobotClient, "identity.admin", AdminConsoleHost.RobotSecret);
        var alice = DemoIds.Of("alice");
        var allowedBefore = await PutAsync(host, robot, $"admin/api/users/{alice}/zoneinfo", new { zoneinfo = "America/Los_Angeles" });

        var disabled = await PostAsync(host, secops, $"identity/admin/users/{appUser}/disable", new { reason = "robot credentials leaked" });
        var write = await PutAsync(host, robot, $"admin/api/users/{alice}/zoneinfo", new { zoneinfo = "Pacific/Kiritimati" });
        var incident = await PostAsync(host, robot, $"identity/admin/users/{DemoIds.Of("dave")}/disable", new { reason = "lock out the defender" });

        Assert.Equal(HttpStatusCode.NoContent, allowedBefore.Status);
        Assert.Equal(HttpStatusCode.OK, disabled.Status);
        Assert.Equal(HttpStatusCode.Forbidden, write.Status);
        Assert.Equal(HttpStatusCode.Forbidden, incident.Status);
    }

    [Fact]
    public async Task A_demoted_admin_loses_incident_powers_at_once_whatever_role_claim_the_token_carries()
    {
        var secops = await SecOpsTokenAsync(host);
        var created = await PostAsync(host, secops, "admin/api/users",
            new { user_name = "ivan", business_unit = "security", email = "ivan@demo.example", password = "Ivan-Was-An-Admin-42" });
        Assert.True(created.Status == HttpStatusCode.Created, created.ToString());
        var ivan = created.Json.GetProperty("id").GetString()!;
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync(host, secops, $"admin/api/users/{ivan}/roles", new { roles = new[] { "security_admin" } })).Status);
        using var browser = host.CreateClient();
        var tokens = await OAuthFlows.SignInAsync(browser, "ivan", "Ivan-Was-An-Admin-42", "openid identity.admin",
            AdminConsoleHost.ConsoleClient, AdminConsoleHost.ConsoleSecret, AdminConsoleHost.ConsoleRedirect);
        var token = tokens.GetProperty("access_token").GetString()!;
        Assert.Equal("security_admin", OAuthFlows.Payload(token).GetProperty("role").GetString());
        var target = DemoIds.Of("erin");
        var whileAdmin = await PostAsync(host, token, $"identity/admin/users/{target}/revoke", new { reason = "drill" });

        var demoted = await PutAsync(host, secops, $"admin/api/users/{ivan}/roles", new { roles = Array.Empty<string>() });
        var afterDemotion = await PostAsync(host, token, $"identity/admin/users/{target}/disable", new { reason = "revenge" });

        Assert.Equal(HttpStatusCode.OK, whileAdmin.Status);
        Assert.Equal(HttpStatusCode.NoContent, demoted.Status);
        Assert.Equal(HttpStatusCode.Forbidden, afterDemotion.Status);
    }

    [Fact]
    public async Task A_client_token_with_the_admin_scope_but_no_application_user_has_no_incident_powers()
    {
        var token = await Personas.ClientTokenAsync(host, AdminConsoleHost.UnboundClient, "identity.admin", AdminConsoleHost.UnboundSecret);

        var disable = await PostAsync(host, token, $"identity/admin/users/{DemoIds.Of("dave")}/disable", new { reason = "takeover" });
        var revoke = await PostAsync(host, token, "identity/admin/clients/demo-secops/revoke", new { reason = "blind the defenders" });

        Assert.Equal(HttpStatusCode.Forbidden, disable.Status);
        Assert.Equal(HttpStatusCode.Forbidden, revoke.Status);
    }

    [Fact]
    public async Task A_business_unit_admin_takes_incident_actions_only_on_users_of_his_unit()
    {
        var wade = await AdminTokenAsync(host, "wade");

        var outside = await PostAsync(host, wade, $"identity/admin/users/{DemoIds.Of("ed")}/revoke", new { reason = "not my unit" });
        var inside = await PostAsync(host, wade, $"identity/admin/users/{DemoIds.Of("bob")}/revoke", new { reason = "suspicious sign-in" });

        Assert.Equal(HttpStatusCode.Forbidden, outside.Status);
        Assert.Equal(HttpStatusCode.OK, inside.Status);
    }

    [Fact]
    public async Task Every_incident_action_is_an_entry_of_the_audit_chain_with_its_actor_and_reason()
    {
        var secops = await SecOpsTokenAsync(host);
        var frank = DemoIds.Of("frank");

        Assert.Equal(HttpStatusCode.OK, (await PostAsync(host, secops, $"identity/admin/users/{frank}/revoke", new { reason = "case 4711 revoke" })).Status);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(host, secops, $"identity/admin/users/{frank}/disable", new { reason = "case 4711 disable" })).Status);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(host, secops, $"identity/admin/users/{frank}/enable", new { reason = "case 4711 enable" })).Status);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(host, secops, $"identity/admin/clients/{AdminConsoleHost.VictimClient}/revoke", new { reason = "case 4711 client" })).Status);
        var entries = await host.QueryAsync("SELECT Action, ActorName, TargetId, \"After\" FROM identity_audit_trail WHERE \"After\" LIKE '%case 4711%' ORDER BY Sequence");

        Assert.Equal(["user.revoke", "user.disable", "user.enable", "client.revoke"], entries.Select(e => (string)e["Action"]!));
        Assert.All(entries, e => Assert.Equal("demo-secops-app", e["ActorName"]));
        Assert.Equal([frank, frank, frank, AdminConsoleHost.VictimClient], entries.Select(e => (string)e["TargetId"]!));
    }
}
