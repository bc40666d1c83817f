using System.Net;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>Bad input to the admin API: problem details naming what and where, and nothing half-applied.</summary>
public sealed class AdminBadInputTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task Unknown_entity_action_and_depth_are_named_by_their_path_and_nothing_is_applied()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var before = await admin.GetAsync("admin/api/roles/support_agent");
        var (version, entries) = await StateAsync();

        var entity = await UpdateAsync(admin, new() { ["case"] = new() { ["read"] = "organization" }, ["spaceship"] = new() { ["read"] = "own" } });
        var action = await UpdateAsync(admin, new() { ["case"] = new() { ["read"] = "organization", ["reed"] = "own" } });
        var depth = await UpdateAsync(admin, new() { ["case"] = new() { ["read"] = "everywhere" } });

        Assert.All([entity, action, depth], reply => Assert.Equal(HttpStatusCode.BadRequest, reply.Status));
        Assert.StartsWith("unknown entity 'spaceship'", entity.Error("privileges.spaceship"), StringComparison.Ordinal);
        Assert.StartsWith("unknown action 'reed'", action.Error("privileges.case.reed"), StringComparison.Ordinal);
        Assert.StartsWith("invalid depth 'everywhere' (use one of none, own, business_unit", depth.Error("privileges.case.read"), StringComparison.Ordinal);
        Assert.Equal(before.Text, (await admin.GetAsync("admin/api/roles/support_agent")).Text); // the valid "case" cell was not applied either
        Assert.Equal((version, entries), await StateAsync());
    }

    [Fact]
    public async Task Unknown_fields_grants_properties_teams_and_users_are_named()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var alice = await AdminApiTests.UserIdAsync(admin, "alice");

        var field = await admin.SendAsync(HttpMethod.Put, "admin/api/field-security-profiles/sales_contact_details",
            new { permissions = new Dictionary<string, Dictionary<string, string>> { ["contact"] = new() { ["shoe_size"] = "read" } } });
        var grant = await admin.SendAsync(HttpMethod.Put, "admin/api/field-security-profiles/sales_contact_details",
            new { permissions = new Dictionary<string, Dictionary<string, string>> { ["contact"] = new() { ["email"] = "peek" } } });
        var property = await admin.SendRawAsync(HttpMethod.Put, "admin/api/roles/support_agent", """{"name":"Support","privilegs":{}}""");
        var team = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{alice}/teams", new { teams = new[] { "west-sales", "no-such-team" } });
        var user = await admin.SendAsync(HttpMethod.Put, "admin/api/users/no-such-user/roles", new { roles = new[] { "sales_rep" } });

        Assert.Equal("unknown field 'shoe_size' of entity 'contact'.", field.Error("permissions.contact.shoe_size"));
        Assert.StartsWith("unknown grant 'peek'", grant.Error("permissions.contact.email"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, property.Status);
        Assert.Contains("privilegs", property.Detail, StringComparison.Ordinal);
        Assert.Equal("unknown team 'no-such-team'.", team.Error("teams[1]"));
        Assert.Equal(HttpStatusCode.NotFound, user.Status);
    }

    [Fact]
    public async Task A_move_that_would_make_a_business_unit_cycle_is_refused()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "emea", name = "EMEA" })).Status);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "emea-north", name = "EMEA North", parent = "emea" })).Status);

        var cycle = await admin.SendAsync(HttpMethod.Put, "admin/api/business-units/emea", new { parent = "emea-north" });
        var self = await admin.SendAsync(HttpMethod.Put, "admin/api/business-units/emea", new { parent = "emea" });

        Assert.Equal(HttpStatusCode.BadRequest, cycle.Status);
        Assert.Equal("moving 'EMEA' under 'EMEA North' would make a cycle (EMEA > EMEA North > EMEA).", cycle.Error("parent"));
        Assert.Contains("would make a cycle", self.Error("parent"), StringComparison.Ordinal);
        var units = (await admin.GetAsync("admin/api/business-units")).Json.EnumerateArray().ToDictionary(u => u.GetProperty("id").GetString()!, u => u.GetProperty("parent").GetString());
        Assert.Equal("root", units["emea"]);
    }

    [Fact]
    public async Task Deleting_a_role_still_assigned_is_a_conflict_naming_the_holders()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var assigned = await admin.SendAsync(HttpMethod.Delete, "admin/api/roles/finance", null);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/roles", new { id = "unused_role", name = "Unused" })).Status);
        var unused = await admin.SendAsync(HttpMethod.Delete, "admin/api/roles/unused_role", null);

        Assert.Equal(HttpStatusCode.Conflict, assigned.Status);
        Assert.Contains("Role 'Finance' is still assigned to 1 user(s) and 0 team(s) (frank)", assigned.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, unused.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("admin/api/roles/unused_role")).Status);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("admin/api/roles/finance")).Status);
    }

    [Fact]
    public async Task Concurrent_edits_of_one_role_give_409_naming_the_versions_and_who_changed_it()
    {
        using var first = await AdminApi.SecOpsAsync(host);
        using var second = await AdminApi.SecOpsAsync(host);
        var etag = (await first.GetAsync("admin/api/roles/marketing")).ETag;
        Assert.Equal(etag, (await second.GetAsync("admin/api/roles/marketing")).ETag);

        var won = await first.SendAsync(HttpMethod.Put, "admin/api/roles/marketing/privileges/lead/delete", new { depth = "own" }, etag);
        var lost = await second.SendAsync(HttpMethod.Put, "admin/api/roles/marketing/privileges/lead/share", new { depth = "own" }, etag);

        Assert.Equal(HttpStatusCode.NoContent, won.Status);
        Assert.Equal(HttpStatusCode.Conflict, lost.Status);
        Assert.Contains("The role 'Marketing' was changed by someone else (role.privilege by demo-secops-app", lost.Detail, StringComparison.Ordinal);
        Assert.Contains("you edited version 1, the current version is 2", lost.Detail, StringComparison.Ordinal);
        var role = (await first.GetAsync("admin/api/roles/marketing")).Json.GetProperty("privileges").GetProperty("lead");
        Assert.Equal("own", role.GetProperty("delete").GetString());
        Assert.False(role.TryGetProperty("share", out _));
    }

    [Fact]
    public async Task An_oversized_request_gets_413_and_changes_nothing()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var (version, entries) = await StateAsync();
        var huge = "{\"name\":\"" + new string('x', 2 * 1024 * 1024) + "\"}";

        var reply = await admin.SendRawAsync(HttpMethod.Put, "admin/api/roles/support_agent", huge);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, reply.Status);
        Assert.Contains("Identity:Authorization:MaxRequestBodyBytes", reply.Detail, StringComparison.Ordinal);
        Assert.Equal((version, entries), await StateAsync());
    }

    private static Task<AdminApi.Reply> UpdateAsync(AdminApi admin, Dictionary<string, Dictionary<string, string>> privileges) =>
        admin.SendAsync(HttpMethod.Put, "admin/api/roles/support_agent", new { privileges });

    private Task<(long Version, int Entries)> StateAsync() => host.WithStoreAsync(async store =>
        (await ModelLoader.VersionAsync(store, Cancel), await store.AuditTrail.CountAsync(Cancel)));
}
