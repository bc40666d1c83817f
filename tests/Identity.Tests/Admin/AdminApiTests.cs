using System.Net;
using System.Text.Json;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>The admin API through the real host over HTTP: guards, audit and access events.</summary>
public sealed class AdminApiTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task A_security_admin_changes_one_privilege_cell_and_the_decision_follows_with_an_audited_event()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var alice = await UserIdAsync(admin, "alice");
        // The tests of this class share one host, and another gives alice the sales manager role: start from the sales
        // rep role alone whatever ran before.
        Assert.Equal(HttpStatusCode.NoContent, (await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{alice}/roles", new { roles = new[] { "sales_rep" } })).Status);
        Assert.False(Model.Current.CheckEntity(Model.Current.UserIndex(alice), Model.Current.EntityIndex("invoice"), CrmAction.Read).Allowed);

        var role = await admin.GetAsync("admin/api/roles/sales_rep");
        var changed = await admin.SendAsync(HttpMethod.Put, "admin/api/roles/sales_rep/privileges/invoice/read", new { depth = "business_unit" }, role.ETag);

        Assert.Equal(HttpStatusCode.NoContent, changed.Status);
        var decision = Model.Current.CheckEntity(Model.Current.UserIndex(alice), Model.Current.EntityIndex("invoice"), CrmAction.Read);
        Assert.True(decision.Allowed);
        Assert.Equal(Depth.BusinessUnit, decision.Depth);
        var who = await admin.GetAsync("admin/api/who-can-access?entity=invoice&action=read");
        Assert.Contains(who.Json.GetProperty("users").EnumerateArray(), u => u.GetProperty("user_name").GetString() == "alice");

        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().OrderByDescending(e => e.Sequence).FirstAsync(Cancel));
        Assert.Equal("role.privilege", entry.Action);
        Assert.Equal("Sales representative", entry.TargetName);
        Assert.Equal(DemoApplicationUser, entry.ActorName);
        Assert.Equal("127.0.0.1", entry.SourceIp);
        Assert.DoesNotContain("\"invoice\"", entry.Before!, StringComparison.Ordinal);
        Assert.Contains("\"invoice\":{\"read\":\"business_unit\"}", entry.After!, StringComparison.Ordinal);
        await host.FlushEventsAsync();
        Assert.True(await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking()
            .AnyAsync(e => e.Action == "admin_change" && e.Privilege == "role.privilege" && e.Details!.Contains("invoice:read none -> business_unit"), Cancel)));
    }

    [Fact]
    public async Task An_admin_limited_to_a_business_unit_manages_only_users_of_that_unit()
    {
        var (west, _) = await AdminApi.ApplicationUserAsync(host, "west-admin", "sales-west", "west_user_admin");
        using var _ = west;
        using var secops = await AdminApi.SecOpsAsync(host);
        var alice = await UserIdAsync(secops, "alice");
        var ed = await UserIdAsync(secops, "ed");

        var listed = (await west.GetAsync("admin/api/users")).Json.EnumerateArray().Select(u => u.GetProperty("user_name").GetString()).ToList();
        var inUnit = await west.SendAsync(HttpMethod.Put, $"admin/api/users/{alice}/roles", new { roles = new[] { "sales_rep", "sales_manager" } });
        var outside = await west.SendAsync(HttpMethod.Put, $"admin/api/users/{ed}/roles", new { roles = new[] { "sales_manager" } });
        var readOutside = await west.GetAsync($"admin/api/users/{ed}");

        Assert.Contains("alice", listed);
        Assert.DoesNotContain("ed", listed);
        Assert.Equal(HttpStatusCode.NoContent, inUnit.Status);
        Assert.Equal(HttpStatusCode.Forbidden, outside.Status);
        Assert.Contains("Sales East", outside.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, readOutside.Status);
        Assert.Equal(["sales_rep"], Model.Current.RolesOf(Model.Current.UserIndex(ed)));
        Assert.Contains("sales_manager", Model.Current.RolesOf(Model.Current.UserIndex(alice)));
    }

    [Fact]
    public async Task Nobody_grants_a_privilege_they_do_not_hold()
    {
        var (west, _) = await AdminApi.ApplicationUserAsync(host, "west-admin-2", "sales-west", "west_user_admin");
        using var _ = west;
        using var secops = await AdminApi.SecOpsAsync(host);
        var bob = await UserIdAsync(secops, "bob");

        var escalate = await west.SendAsync(HttpMethod.Put, $"admin/api/users/{bob}/roles", new { roles = new[] { "sales_manager", "finance" } });
        var widen = await secops.SendAsync(HttpMethod.Put, "admin/api/roles/marketing/privileges/oidc_client/assign", new { depth = "organization" });

        Assert.Equal(HttpStatusCode.Forbidden, escalate.Status);
        Assert.Contains("cannot grant account:export at organization depth", escalate.Detail, StringComparison.Ordinal);
        Assert.Contains("role 'Finance'", escalate.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, widen.Status); // security_admin manages clients but does not hold assign on them
        Assert.Contains("oidc_client:assign", widen.Detail, StringComparison.Ordinal);
        Assert.Equal(["sales_manager"], Model.Current.RolesOf(Model.Current.UserIndex(bob)));
    }

    [Fact]
    public async Task Nobody_edits_their_own_roles_teams_or_business_unit()
    {
        using var secops = await AdminApi.SecOpsAsync(host);
        var self = await UserIdAsync(secops, DemoApplicationUser);

        var roles = await secops.SendAsync(HttpMethod.Put, $"admin/api/users/{self}/roles", new { roles = new[] { "security_admin", "system_admin" } });
        var teams = await secops.SendAsync(HttpMethod.Put, $"admin/api/users/{self}/teams", new { teams = new[] { "west-sales" } });
        var unit = await secops.SendAsync(HttpMethod.Put, $"admin/api/users/{self}/business-unit", new { business_unit = "sales-west" });

        Assert.All([roles, teams, unit], reply => Assert.Equal(HttpStatusCode.Forbidden, reply.Status));
        Assert.Contains("cannot change their own roles", roles.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Viewing_is_separate_from_managing()
    {
        using (var secops = await AdminApi.SecOpsAsync(host))
        {
            var role = await secops.SendAsync(HttpMethod.Post, "admin/api/roles", new
            {
                id = "admin_viewer",
                name = "Admin viewer",
                privileges = new Dictionary<string, Dictionary<string, string>>
                {
                    ["security_role"] = new() { ["read"] = "organization" },
                    ["business_unit"] = new() { ["read"] = "organization" },
                },
            });
            Assert.Equal(HttpStatusCode.Created, role.Status);
        }

        var (auditor, _) = await AdminApi.ApplicationUserAsync(host, "viewer-app", "compliance", "admin_viewer");
        using var _ = auditor;

        var read = await auditor.GetAsync("admin/api/roles/sales_rep");
        var write = await auditor.SendAsync(HttpMethod.Put, "admin/api/roles/sales_rep/privileges/contact/read", new { depth = "organization" });
        var create = await auditor.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "audit-made", name = "Audit made" });

        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.Equal("business_unit", read.Json.GetProperty("privileges").GetProperty("contact").GetProperty("read").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, write.Status);
        Assert.Contains("update on security_role", write.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, create.Status);
    }

    [Fact]
    public async Task The_admin_api_refuses_missing_and_foreign_tokens_and_callers_that_are_not_users()
    {
        using var http = host.CreateClient();
        var crm = (await ClientCredentialsAsync(http)).GetProperty("access_token").GetString()!;
        await using (var scope = host.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<Clients.ClientRegistry>().RegisterAsync(
                new ClientSettings { ClientId = "no-app-user", ClientSecret = "no-app-user-secret", GrantTypes = ["client_credentials"], Scopes = ["identity.admin"] }, Cancel);
        }

        using var anonymous = new AdminApi(host, "");
        using var foreign = new AdminApi(host, crm);
        using var stranger = new AdminApi(host, await AdminApi.TokenAsync(http, "no-app-user", "no-app-user-secret"));

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("admin/api/roles")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await foreign.GetAsync("admin/api/roles")).Status); // audience crm-api
        var refused = await stranger.GetAsync("admin/api/roles");
        Assert.Equal(HttpStatusCode.Forbidden, refused.Status); // the scope alone grants nothing: deny by default
        Assert.Contains("not an enabled user or application user", refused.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Disabling_a_user_through_the_api_revokes_their_tokens()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/users",
            new { user_name = "hank", display_name = "Hank Temp", email = "hank@demo.example", business_unit = "sales-west", password = "Hank-Is-Temporary-42" });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        var id = created.Json.GetProperty("id").GetString()!;
        Assert.Equal(HttpStatusCode.NoContent, (await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}/roles", new { roles = new[] { "sales_rep" } })).Status);
        using var browser = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var (status, tokens) = await RedeemAsync(browser, CodeFrom(await AuthorizeAsync(browser, AuthorizeParameters(challenge), "hank", "Hank-Is-Temporary-42")), verifier);
        Assert.Equal(HttpStatusCode.OK, status);

        var disabled = await admin.SendAsync(HttpMethod.Post, $"admin/api/users/{id}/disable", null);

        Assert.Equal(HttpStatusCode.NoContent, disabled.Status);
        Assert.False(await IsActiveAsync(browser, tokens.GetProperty("access_token").GetString()!));
        Assert.True(Model.Current.User(id)!.Disabled);
        var view = (await admin.GetAsync($"admin/api/users/{id}")).Json;
        Assert.True(view.GetProperty("disabled").GetBoolean());
        Assert.True(await host.WithStoreAsync(store => store.AuditTrail.AnyAsync(e => e.Action == "user.disable" && e.TargetName == "hank", Cancel)));
    }

    [Fact]
    public async Task Assignments_and_shares_are_emitted_as_assign_and_share_access_events()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var grace = await UserIdAsync(admin, "grace");

        var share = await admin.SendAsync(HttpMethod.Post, "admin/api/shares",
            new { entity = "opportunity", record_id = "opp-77", record_business_unit = "sales-east", principal_kind = "user", principal_id = grace, actions = new[] { "read" } });
        var teams = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{grace}/teams", new { teams = new[] { "east-sales" } });

        Assert.Equal(HttpStatusCode.Created, share.Status);
        Assert.Equal(HttpStatusCode.NoContent, teams.Status);
        await host.FlushEventsAsync();
        var events = await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking().Where(e => e.TargetUser == grace).ToListAsync(Cancel));
        Assert.Contains(events, e => e.Action == "share" && e.Privilege == "share.create" && e.UserName == DemoApplicationUser);
        Assert.Contains(events, e => e.Action == "assign" && e.Privilege == "user.teams");
        var audit = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.Action == "user.teams" && e.TargetId == grace).SingleAsync(Cancel));
        Assert.Equal("{\"teams\":[]}", audit.Before);
        Assert.Equal("{\"teams\":[\"Sales East team\"]}", audit.After);
    }

    [Fact]
    public async Task A_users_time_zone_is_set_by_iana_id_audited_and_shown_in_the_model_and_the_user()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var frank = await UserIdAsync(admin, "frank");

        var set = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{frank}/zoneinfo", new { zoneinfo = "Asia/Tokyo" });

        Assert.Equal(HttpStatusCode.NoContent, set.Status);
        Assert.Equal("Asia/Tokyo", Model.Current.User(frank)!.Definition.ZoneInfo);
        Assert.Equal("Asia/Tokyo", (await admin.GetAsync($"admin/api/users/{frank}")).Json.GetProperty("zoneinfo").GetString());
        var audit = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.Action == "user.zoneinfo" && e.TargetId == frank).SingleAsync(Cancel));
        Assert.Equal("{\"zoneinfo\":\"Europe/Paris\"}", audit.Before);
        Assert.Equal("{\"zoneinfo\":\"Asia/Tokyo\"}", audit.After);
        await host.FlushEventsAsync();
        Assert.True(await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking()
            .AnyAsync(e => e.Action == "admin_change" && e.Privilege == "user.zoneinfo" && e.TargetUser == frank, Cancel)));
    }

    [Theory]
    [InlineData("Mars/Olympus_Mons", "is not a known IANA time zone")]
    [InlineData("W. Europe Standard Time", "is a Windows time zone id")]
    public async Task A_time_zone_that_is_not_an_iana_id_is_refused_naming_the_field(string zone, string message)
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var erin = await UserIdAsync(admin, "erin");

        var refused = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{erin}/zoneinfo", new { zoneinfo = zone });

        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.Contains(message, refused.Error("zoneinfo"), StringComparison.Ordinal);
        Assert.Equal("Europe/Dublin", Model.Current.User(erin)!.Definition.ZoneInfo);
    }

    [Fact]
    public async Task Nobody_sets_their_own_time_zone()
    {
        using var secops = await AdminApi.SecOpsAsync(host);
        var self = await UserIdAsync(secops, DemoApplicationUser);

        var refused = await secops.SendAsync(HttpMethod.Put, $"admin/api/users/{self}/zoneinfo", new { zoneinfo = "Pacific/Kiritimati" });

        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Null(Model.Current.User(self)!.Definition.ZoneInfo);
    }

    [Fact]
    public async Task The_openapi_document_describes_the_admin_api()
    {
        using var http = host.CreateClient();
        using var document = JsonDocument.Parse(await http.GetStringAsync(new Uri("admin/api/openapi/admin.json", UriKind.Relative), Cancel));
        var paths = document.RootElement.GetProperty("paths");

        Assert.True(paths.TryGetProperty("/admin/api/roles/{id}/privileges/{entity}/{action}", out _));
        Assert.True(paths.TryGetProperty("/admin/api/users/{id}/roles", out _));
        Assert.False(paths.TryGetProperty("/connect/token", out _));
    }

    internal const string DemoApplicationUser = "demo-secops-app";

    private AuthorizationModel Model => host.Services.GetRequiredService<AuthorizationModel>();

    internal static async Task<string> UserIdAsync(AdminApi admin, string userName)
    {
        var users = await admin.GetAsync("admin/api/users");
        Assert.True(users.Status == HttpStatusCode.OK, $"{users.Status} {users.Text}");
        return users.Json.EnumerateArray().Single(u => u.GetProperty("user_name").GetString() == userName).GetProperty("id").GetString()!;
    }
}
