using System.Net;
using CrmSecurity.Identity.Demo;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Scim;

/// <summary>An HR system's provisioning cycle and the attacks on SCIM, through the real host over HTTP.</summary>
public sealed class ScimProvisioningTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private const string Enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    private const string PatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

    private Identity.Authorization.Store.AuthorizationModel Model => host.Services.GetRequiredService<Identity.Authorization.Store.AuthorizationModel>();

    [Fact]
    public async Task An_HR_system_creates_updates_groups_deactivates_and_reactivates_a_person()
    {
        using var hr = await ScimClient.CreateAsync(host, "scim-hr", "sales", ["security_admin"], ["all_secured_fields"]);
        var bob = DemoSeeder.DemoUserId("bob");
        var alice = DemoSeeder.DemoUserId("alice");
        const string password = "Nina-Sells-Widgets-42";

        // Hire: created in Sales West, department and manager from the HR record.
        var created = await hr.SendAsync(HttpMethod.Post, "scim/v2/Users", $$"""
            { "schemas":["urn:ietf:params:scim:schemas:core:2.0:User","{{Enterprise}}"],
              "userName":"nina", "externalId":"HR-1001", "displayName":"Nina New", "password":"{{password}}",
              "emails":[{"value":"nina@demo.example","type":"work","primary":true}],
              "{{Enterprise}}":{ "department":"Sales", "manager":{ "value":"{{bob}}" } },
              "urn:crm-security:params:scim:schemas:extension:crm:2.0:User":{ "businessUnit":"sales-west" } }
            """);
        Assert.True(created.Status == HttpStatusCode.Created, created.ToString());
        var nina = created.Id;
        Assert.Equal(bob, created.Json.GetProperty(Enterprise).GetProperty("manager").GetProperty("value").GetString());
        Assert.Equal("Bob Manager", created.Json.GetProperty(Enterprise).GetProperty("manager").GetProperty("displayName").GetString());

        // Transfer: new department and manager (Entra sends the manager as a bare id).
        var moved = await hr.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{nina}", $$"""
            { "schemas":["{{PatchOp}}"], "Operations":[
              { "op":"replace", "path":"{{Enterprise}}:department", "value":"Key accounts" },
              { "op":"replace", "path":"{{Enterprise}}:manager", "value":"{{alice}}" } ] }
            """, created.ETag);
        Assert.True(moved.Status == HttpStatusCode.OK, moved.ToString());
        Assert.Equal("Key accounts", moved.Json.GetProperty(Enterprise).GetProperty("department").GetString());
        Assert.Equal(alice, moved.Json.GetProperty(Enterprise).GetProperty("manager").GetProperty("value").GetString());
        Assert.Equal(alice, Model.Current.User(nina)!.Definition.ManagerId);

        // Joins the Sales West team (a group): the team's field security profile now applies to her.
        var joined = await hr.SendAsync(HttpMethod.Patch, "scim/v2/Groups/west-sales", $$"""
            { "schemas":["{{PatchOp}}"], "Operations":[{ "op":"add", "path":"members", "value":[{ "value":"{{nina}}" }] }] }
            """);
        Assert.True(joined.Status == HttpStatusCode.OK, joined.ToString());
        Assert.Contains(joined.Json.GetProperty("members").EnumerateArray(), m => m.GetProperty("value").GetString() == nina);
        Assert.Equal("west-sales", (await hr.GetAsync($"scim/v2/Users/{nina}")).Json.GetProperty("groups")[0].GetProperty("value").GetString());

        // She signs in and works.
        using var http = host.CreateClient();
        var tokens = await SignInAsync(http, "nina", password);
        var access = tokens.GetProperty("access_token").GetString()!;
        Assert.True(await IsActiveAsync(http, access));

        // Leave of absence: active=false (Entra's string form) revokes her tokens and refuses sign-in.
        var deactivated = await hr.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{nina}", $$"""
            { "schemas":["{{PatchOp}}"], "Operations":[{ "op":"Replace", "path":"active", "value":"False" }] }
            """);
        Assert.True(deactivated.Status == HttpStatusCode.OK, deactivated.ToString());
        Assert.False(deactivated.Json.GetProperty("active").GetBoolean());
        Assert.False(await IsActiveAsync(http, access));
        Assert.Equal(HttpStatusCode.BadRequest, (await RefreshAsync(http, tokens.GetProperty("refresh_token").GetString()!)).Status);
        using (var browser = host.CreateClient())
        {
            Assert.Equal(HttpStatusCode.OK, (await SubmitLoginAsync(browser, "/account", "nina", password)).StatusCode); // the form again, not a redirect
        }

        // Back: active=true, and she signs in again.
        var reactivated = await hr.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{nina}", $$"""
            { "schemas":["{{PatchOp}}"], "Operations":[{ "op":"replace", "value":{ "active":true } }] }
            """);
        Assert.True(reactivated.Status == HttpStatusCode.OK, reactivated.ToString());
        // The revocation's cut-off is one second past the deactivation and issue times are truncated to whole seconds, so
        // only a code issued two seconds after the deactivation is certainly newer (1.1 s after the reactivation failed in
        // CI when the reactivation followed within the same second).
        await Task.Delay(TimeSpan.FromSeconds(2.1), Cancel);
        using (var again = host.CreateClient())
        {
            Assert.True(await IsActiveAsync(again, (await SignInAsync(again, "nina", password)).GetProperty("access_token").GetString()!));
        }

        // Every step is in the hash-chained audit trail, with the HR client's application user as the actor.
        var actions = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == nina).OrderBy(e => e.Sequence).Select(e => new { e.Action, e.ActorName, e.ClientId }).ToListAsync(Cancel));
        Assert.Equal(["user.create", "user.profile", "user.profile", "user.teams", "user.disable", "user.enable"], actions.Select(a => a.Action));
        Assert.All(actions, a => Assert.Equal(("scim-hr-app", "scim-hr"), (a.ActorName, a.ClientId)));

        // Leaver: DELETE disables, sets the last working day, and SCIM answers 404 from then on; the row stays for the trail.
        var deleted = await hr.SendAsync(HttpMethod.Delete, $"scim/v2/Users/{nina}", null);
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await hr.GetAsync($"scim/v2/Users/{nina}")).Status);
        var row = await host.WithStoreAsync(store => store.Users.AsNoTracking().SingleAsync(u => u.Id == nina, Cancel));
        Assert.True(row.IsDisabled);
        Assert.NotNull(row.Terminated);
    }

    [Fact]
    public async Task Without_a_token_or_the_scim_scope_SCIM_is_refused()
    {
        using var anonymous = new ScimClient(host, "");
        using var http = host.CreateClient();
        using var adminOnly = new ScimClient(host, (await ClientCredentialsAsync(http, "identity.admin", "demo-secops", "demo-secops-secret")).GetProperty("access_token").GetString()!);

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("scim/v2/Users")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(HttpMethod.Post, "scim/v2/Users", "{}")).Status);
        // RFC 6750 §3.1: a valid token without the scope is 403.
        Assert.Equal(HttpStatusCode.Forbidden, (await adminOnly.GetAsync("scim/v2/Users")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await adminOnly.GetAsync("scim/v2/ServiceProviderConfig")).Status);
    }

    [Fact]
    public async Task A_client_limited_to_a_business_unit_neither_sees_nor_changes_anyone_outside_it()
    {
        using var west = await ScimClient.CreateAsync(host, "scim-west", "sales-west", DemoSeeder.WestAdminRole);
        var ed = DemoSeeder.DemoUserId("ed");
        var patch = $$"""{ "schemas":["{{PatchOp}}"], "Operations":[{ "op":"replace", "path":"active", "value":false }] }""";

        var listed = (await west.GetAsync("scim/v2/Users?count=200")).Json.GetProperty("Resources").EnumerateArray().Select(r => r.GetProperty("userName").GetString()).ToList();
        var found = (await west.GetAsync("scim/v2/Users?filter=" + Uri.EscapeDataString("userName eq \"ed\""))).Json;

        Assert.Contains("alice", listed);
        Assert.DoesNotContain("ed", listed);
        Assert.DoesNotContain("carol", listed);
        Assert.Equal(0, found.GetProperty("totalResults").GetInt32());
        // Outside the unit is answered like a user that does not exist.
        Assert.Equal(HttpStatusCode.NotFound, (await west.GetAsync($"scim/v2/Users/{ed}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await west.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{ed}", patch)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await west.SendAsync(HttpMethod.Delete, $"scim/v2/Users/{ed}", null)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await west.GetAsync("scim/v2/Groups/east-sales")).Status);
        Assert.False(Model.Current.User(ed)!.Disabled);

        // Nor by naming an outsider as a member or a manager.
        var member = await west.SendAsync(HttpMethod.Patch, "scim/v2/Groups/west-sales", $$"""{ "schemas":["{{PatchOp}}"], "Operations":[{ "op":"add", "path":"members", "value":[{ "value":"{{ed}}" }] }] }""");
        var manager = await west.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{DemoSeeder.DemoUserId("alice")}", $$"""{ "schemas":["{{PatchOp}}"], "Operations":[{ "op":"replace", "path":"{{Enterprise}}:manager", "value":{ "value":"{{ed}}" } }] }""");
        Assert.Equal(HttpStatusCode.BadRequest, member.Status);
        Assert.Equal(HttpStatusCode.BadRequest, manager.Status);
        Assert.Equal("invalidValue", manager.Json.GetProperty("scimType").GetString());
        Assert.DoesNotContain(Model.Current.Teams[Model.Current.TeamIndex("west-sales")].Members, m => Model.Current.Users[m].Id == ed);

        // Creating someone in another unit needs create there: refused, and nothing is created.
        var outside = await west.SendAsync(HttpMethod.Post, "scim/v2/Users", """
            { "schemas":["urn:ietf:params:scim:schemas:core:2.0:User"], "userName":"east-intruder", "emails":[{"value":"intruder@demo.example"}],
              "urn:crm-security:params:scim:schemas:extension:crm:2.0:User":{ "businessUnit":"sales-east" } }
            """);
        Assert.Equal(HttpStatusCode.Forbidden, outside.Status);
        Assert.False(await host.WithStoreAsync(store => store.Users.AnyAsync(u => u.UserName == "east-intruder", Cancel)));
    }

    [Fact]
    public async Task PATCH_cannot_grant_a_role_the_client_does_not_hold()
    {
        using var west = await ScimClient.CreateAsync(host, "scim-roles", "sales-west", DemoSeeder.WestAdminRole);
        var bob = DemoSeeder.DemoUserId("bob");
        var before = Model.Current.User(bob)!.DirectRoles.ToArray();

        var escalate = await west.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{bob}", $$"""
            { "schemas":["{{PatchOp}}"], "Operations":[{ "op":"add", "path":"roles", "value":[{ "value":"security_admin" }] }] }
            """);
        var put = await west.GetAsync($"scim/v2/Users/{bob}");
        var replaced = put.Text.Replace("\"roles\":[", "\"roles\":[{\"value\":\"security_admin\"},", StringComparison.Ordinal);
        var escalateByPut = await west.SendAsync(HttpMethod.Put, $"scim/v2/Users/{bob}", replaced);

        Assert.Equal(HttpStatusCode.Forbidden, escalate.Status);
        Assert.Contains("cannot grant", escalate.Json.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, escalateByPut.Status);
        Assert.Equal(before, Model.Current.User(bob)!.DirectRoles);
        Assert.False(await host.WithStoreAsync(store => store.AuditTrail.AnyAsync(e => e.TargetId == bob && e.Action == "user.roles" && e.ClientId == "scim-roles", Cancel)));
    }

    [Fact]
    public async Task Oversized_and_malformed_bodies_get_a_SCIM_error()
    {
        using var scim = await ScimClient.CreateAsync(host, "scim-bodies", "sales", "security_admin");
        var alice = DemoSeeder.DemoUserId("alice");
        var many = string.Join(",", Enumerable.Range(0, 101).Select(_ => """{ "op":"replace", "path":"displayName", "value":"x" }"""));

        var tooMany = await scim.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{alice}", $$"""{ "schemas":["{{PatchOp}}"], "Operations":[{{many}}] }""");
        var notJson = await scim.SendAsync(HttpMethod.Post, "scim/v2/Users", "{ not json");
        var deep = await scim.SendAsync(HttpMethod.Post, "scim/v2/Users", string.Concat(Enumerable.Repeat("{\"a\":", 100)) + "1" + new string('}', 100));
        var noSchema = await scim.SendAsync(HttpMethod.Post, "scim/v2/Users", """{ "userName":"x" }""");
        var badPath = await scim.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{alice}", $$"""{ "schemas":["{{PatchOp}}"], "Operations":[{ "op":"replace", "path":"emails[type eq ", "value":"x" }] }""");
        var xml = await scim.SendAsync(HttpMethod.Post, "scim/v2/Users", "<user/>", mediaType: "application/xml");

        Assert.Equal((HttpStatusCode.BadRequest, "tooMany"), (tooMany.Status, tooMany.Json.GetProperty("scimType").GetString()));
        Assert.Equal((HttpStatusCode.BadRequest, "invalidSyntax"), (notJson.Status, notJson.Json.GetProperty("scimType").GetString()));
        Assert.Equal((HttpStatusCode.BadRequest, "invalidSyntax"), (deep.Status, deep.Json.GetProperty("scimType").GetString()));
        Assert.Equal((HttpStatusCode.BadRequest, "invalidSyntax"), (noSchema.Status, noSchema.Json.GetProperty("scimType").GetString()));
        Assert.Equal((HttpStatusCode.BadRequest, "invalidPath"), (badPath.Status, badPath.Json.GetProperty("scimType").GetString()));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, xml.Status);
    }
}
