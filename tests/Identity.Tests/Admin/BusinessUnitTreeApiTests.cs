using System.Net;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// Business units as a tree through the admin API over real HTTP (issue 13): create, rename, move and delete with the rules
/// Dynamics 365 applies, and a business-unit admin confined to his own subtree.
/// </summary>
public sealed class BusinessUnitTreeApiTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task A_unit_is_created_renamed_moved_and_deleted_each_audited_with_before_and_after()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "tree-emea", name = "EMEA sales", parent = "sales" });
        var renamed = await admin.SendAsync(HttpMethod.Put, "admin/api/business-units/tree-emea", new { name = "Sales EMEA", version = 1 });
        var moved = await admin.SendAsync(HttpMethod.Put, "admin/api/business-units/tree-emea", new { parent = "marketing" }, "\"2\"");
        var list = (await admin.GetAsync("admin/api/business-units")).Json.EnumerateArray().ToList();
        var stale = await admin.SendRawAsync(HttpMethod.Delete, "admin/api/business-units/tree-emea", null, "\"2\"");
        var deleted = await admin.SendRawAsync(HttpMethod.Delete, "admin/api/business-units/tree-emea", null, "\"3\"");

        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal(HttpStatusCode.NoContent, renamed.Status);
        Assert.Equal(HttpStatusCode.NoContent, moved.Status);
        var unit = list.Single(u => u.GetProperty("id").GetString() == "tree-emea");
        Assert.Equal("Sales EMEA", unit.GetProperty("name").GetString());
        Assert.Equal("marketing", unit.GetProperty("parent").GetString());
        Assert.Equal(0, unit.GetProperty("users").GetInt32());
        var sales = list.Single(u => u.GetProperty("id").GetString() == "sales");
        Assert.Equal(2, sales.GetProperty("children").GetInt32());
        Assert.True(list.FindIndex(u => u.GetProperty("id").GetString() == "marketing") < list.IndexOf(unit), "the list is the tree in pre-order: parents first");
        Assert.Equal(HttpStatusCode.Conflict, stale.Status);
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        var entries = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == "tree-emea").OrderBy(e => e.Sequence).ToListAsync(Cancel));
        Assert.Equal(["business_unit.create", "business_unit.update", "business_unit.update", "business_unit.delete"], entries.Select(e => e.Action));
        Assert.Equal("{\"name\":\"EMEA sales\",\"parent\":\"sales\"}", entries[1].Before);
        Assert.Equal("{\"name\":\"Sales EMEA\",\"parent\":\"marketing\"}", entries[2].After);
        Assert.Equal("{\"name\":\"Sales EMEA\",\"parent\":\"marketing\"}", entries[3].Before);
    }

    [Fact]
    public async Task The_root_never_moves_or_goes_and_a_unit_never_moves_under_its_own_descendant()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var root = (await admin.GetAsync("admin/api/business-units")).Json.EnumerateArray().Single(u => u.GetProperty("parent").ValueKind == System.Text.Json.JsonValueKind.Null).GetProperty("id").GetString()!;

        var moveRoot = await admin.SendAsync(HttpMethod.Put, $"admin/api/business-units/{root}", new { parent = "sales" });
        var deleteRoot = await admin.SendAsync(HttpMethod.Delete, $"admin/api/business-units/{root}", null);
        var cycle = await admin.SendAsync(HttpMethod.Put, "admin/api/business-units/sales", new { parent = "sales-west" });
        var self = await admin.SendAsync(HttpMethod.Put, "admin/api/business-units/sales", new { parent = "sales" });

        Assert.Equal(HttpStatusCode.BadRequest, moveRoot.Status);
        Assert.Contains("root", moveRoot.Error("parent"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, deleteRoot.Status);
        Assert.Contains("root", deleteRoot.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, cycle.Status);
        Assert.Contains("cycle", cycle.Error("parent"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, self.Status);
    }

    [Fact]
    public async Task A_unit_with_child_units_users_or_teams_is_not_deleted_and_says_what_holds_it()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "tree-parent", name = "Tree parent" })).Status);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "tree-child", name = "Tree child", parent = "tree-parent" })).Status);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "tree-team-unit", name = "Tree team unit" })).Status);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/teams", new { id = "tree-team", name = "Tree team", business_unit = "tree-team-unit" })).Status);

        var withChild = await admin.SendAsync(HttpMethod.Delete, "admin/api/business-units/tree-parent", null);
        var withUsers = await admin.SendAsync(HttpMethod.Delete, "admin/api/business-units/sales-west", null);
        var withTeam = await admin.SendAsync(HttpMethod.Delete, "admin/api/business-units/tree-team-unit", null);

        Assert.Equal(HttpStatusCode.Conflict, withChild.Status);
        Assert.Contains("1 child unit(s)", withChild.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, withUsers.Status);
        Assert.Matches(@"[1-9]\d* user\(s\)", withUsers.Detail);
        Assert.Equal(HttpStatusCode.Conflict, withTeam.Status);
        Assert.Contains("1 team(s)", withTeam.Detail, StringComparison.Ordinal);
        Assert.Contains((await admin.GetAsync("admin/api/business-units")).Json.EnumerateArray(), u => u.GetProperty("id").GetString() == "tree-parent");
    }

    [Theory]
    [InlineData("", "name is required")]
    [InlineData("Sales West", "is taken by business unit 'sales-west'")]
    [InlineData("sales west", "is taken by business unit 'sales-west'")]
    public async Task A_unit_needs_a_name_no_other_unit_has(string name, string message)
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "tree-named", name });
        var renamed = await admin.SendAsync(HttpMethod.Put, "admin/api/business-units/sales-east", new { name });

        Assert.All([created, renamed], reply => Assert.Contains(message, reply.Error("name"), StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.NotFound, (await admin.SendAsync(HttpMethod.Delete, "admin/api/business-units/tree-named", null)).Status);
    }

    [Fact]
    public async Task A_name_longer_than_the_column_is_refused_naming_the_field()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "tree-long", name = new string('n', 201) });

        Assert.Equal(HttpStatusCode.BadRequest, created.Status);
        Assert.Contains("1 to 200 characters", created.Error("name"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_business_unit_admin_cannot_create_move_rename_or_delete_a_unit_outside_his_own_subtree()
    {
        using (var secops = await AdminApi.SecOpsAsync(host))
        {
            var role = await secops.SendAsync(HttpMethod.Post, "admin/api/roles", new
            {
                id = "sales_unit_admin",
                name = "Sales unit administrator",
                privileges = new Dictionary<string, Dictionary<string, string>>
                {
                    ["business_unit"] = new() { ["read"] = "business_unit_and_children", ["create"] = "business_unit_and_children", ["update"] = "business_unit_and_children", ["delete"] = "business_unit_and_children" },
                },
            });
            Assert.Equal(HttpStatusCode.Created, role.Status);
            Assert.Equal(HttpStatusCode.Created, (await secops.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "tree-outside", name = "Tree outside" })).Status);
        }

        var (unitAdmin, _) = await AdminApi.ApplicationUserAsync(host, "sales-unit-admin", "sales", "sales_unit_admin");
        using var _ = unitAdmin;

        // Inside his subtree he works: a unit under Sales West, renamed, moved to Sales East, deleted.
        var inside = await unitAdmin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "tree-west-north", name = "Sales West North", parent = "sales-west" });
        var insideMove = await unitAdmin.SendAsync(HttpMethod.Put, "admin/api/business-units/tree-west-north", new { name = "Sales North", parent = "sales-east" });

        // Outside it he is refused, and nothing changes.
        var createOutside = await unitAdmin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "tree-rogue", name = "Rogue", parent = "finance" });
        var createAtRoot = await unitAdmin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "tree-rogue-root", name = "Rogue root" });
        var moveOut = await unitAdmin.SendAsync(HttpMethod.Put, "admin/api/business-units/tree-west-north", new { parent = "finance" });
        var moveIn = await unitAdmin.SendAsync(HttpMethod.Put, "admin/api/business-units/tree-outside", new { parent = "sales-west" });
        var renameOutside = await unitAdmin.SendAsync(HttpMethod.Put, "admin/api/business-units/tree-outside", new { name = "Mine now" });
        var moveOwnUnitAway = await unitAdmin.SendAsync(HttpMethod.Put, "admin/api/business-units/sales", new { parent = "finance" });
        var deleteOutside = await unitAdmin.SendAsync(HttpMethod.Delete, "admin/api/business-units/tree-outside", null);
        var listed = (await unitAdmin.GetAsync("admin/api/business-units")).Json.EnumerateArray().Select(u => u.GetProperty("id").GetString()).ToList();
        var deleteInside = await unitAdmin.SendAsync(HttpMethod.Delete, "admin/api/business-units/tree-west-north", null);

        Assert.Equal(HttpStatusCode.Created, inside.Status);
        Assert.Equal(HttpStatusCode.NoContent, insideMove.Status);
        Assert.All([createOutside, createAtRoot, moveOut, moveIn, renameOutside, moveOwnUnitAway, deleteOutside], reply => Assert.Equal(HttpStatusCode.Forbidden, reply.Status));
        Assert.Contains("business unit 'Finance'", createOutside.Detail, StringComparison.Ordinal);
        Assert.Equal(["sales", "sales-east", "tree-west-north", "sales-west"], listed);
        Assert.Equal(HttpStatusCode.NoContent, deleteInside.Status);
        using var secopsAfter = await AdminApi.SecOpsAsync(host);
        var after = (await secopsAfter.GetAsync("admin/api/business-units")).Json.EnumerateArray().ToList();
        Assert.DoesNotContain(after, u => u.GetProperty("id").GetString() is "tree-rogue" or "tree-rogue-root");
        var outside = after.Single(u => u.GetProperty("id").GetString() == "tree-outside");
        Assert.Equal("Tree outside", outside.GetProperty("name").GetString());
        Assert.NotEqual("sales-west", outside.GetProperty("parent").GetString());
        Assert.NotEqual("finance", after.Single(u => u.GetProperty("id").GetString() == "sales").GetProperty("parent").GetString());
    }
}
