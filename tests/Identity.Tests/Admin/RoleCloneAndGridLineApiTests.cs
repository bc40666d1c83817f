using System.Net;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// Roles through the admin API over real HTTP (issue 13): clone a role, and set a whole row or column of the privilege grid
/// in one audited, version-checked change; nobody grants through either what they do not hold.
/// </summary>
public sealed class RoleCloneAndGridLineApiTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task A_clone_has_the_source_privileges_and_is_audited_as_a_create_naming_the_source()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var cloned = await admin.SendAsync(HttpMethod.Post, "admin/api/roles/sales_rep/clone", new { id = "sales_rep_emea", name = "Sales rep (EMEA)" });
        var source = (await admin.GetAsync("admin/api/roles/sales_rep")).Json;
        var clone = (await admin.GetAsync("admin/api/roles/sales_rep_emea")).Json;

        Assert.Equal(HttpStatusCode.Created, cloned.Status);
        Assert.Equal("Sales rep (EMEA)", clone.GetProperty("name").GetString());
        Assert.Equal(source.GetProperty("privileges").GetRawText(), clone.GetProperty("privileges").GetRawText());
        Assert.Equal(source.GetProperty("description").GetString(), clone.GetProperty("description").GetString());
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.TargetId == "sales_rep_emea", Cancel));
        Assert.Equal("role.create", entry.Action);
        Assert.Null(entry.Before);
        Assert.Contains("\"cloned_from\":{\"id\":\"sales_rep\",\"name\":", entry.After!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_clone_needs_a_new_id_and_a_name_and_an_existing_source()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var taken = await admin.SendAsync(HttpMethod.Post, "admin/api/roles/sales_rep/clone", new { id = "sales_manager", name = "Copy" });
        var nameless = await admin.SendAsync(HttpMethod.Post, "admin/api/roles/sales_rep/clone", new { id = "nameless_copy" });
        var badId = await admin.SendAsync(HttpMethod.Post, "admin/api/roles/sales_rep/clone", new { id = "bad id!", name = "Copy" });
        var missing = await admin.SendAsync(HttpMethod.Post, "admin/api/roles/no_such_role/clone", new { id = "copy_of_nothing", name = "Copy" });

        Assert.Equal(HttpStatusCode.Conflict, taken.Status);
        Assert.Contains("already exists", taken.Error("id"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, nameless.Status);
        Assert.Contains("name is required", nameless.Error("name"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, badId.Status);
        Assert.NotNull(badId.Error("id"));
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
    }

    [Fact]
    public async Task A_whole_row_is_set_in_one_change_with_one_audit_entry_naming_only_the_cells_it_changed()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/roles/sales_rep/clone", new { id = "row_role", name = "Row role" })).Status);
        var role = await admin.GetAsync("admin/api/roles/row_role");
        var contactBefore = role.Json.GetProperty("privileges").GetProperty("contact").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        var entriesBefore = await host.WithStoreAsync(store => store.AuditTrail.CountAsync(Cancel));

        var set = await admin.SendAsync(HttpMethod.Put, "admin/api/roles/row_role/rows/contact", new { depth = "business_unit" }, role.ETag);
        var stale = await admin.SendAsync(HttpMethod.Put, "admin/api/roles/row_role/rows/contact", new { depth = "none" }, role.ETag);
        var after = await admin.GetAsync("admin/api/roles/row_role");

        Assert.Equal(HttpStatusCode.NoContent, set.Status);
        Assert.Equal(HttpStatusCode.Conflict, stale.Status);
        var contact = after.Json.GetProperty("privileges").GetProperty("contact");
        Assert.Equal(7, contact.EnumerateObject().Count());
        Assert.All(contact.EnumerateObject(), cell => Assert.Equal("business_unit", cell.Value.GetString()));
        var entries = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == "row_role" && e.Action == "role.privileges").ToListAsync(Cancel));
        var entry = Assert.Single(entries);
        Assert.Equal(entriesBefore + 1, await host.WithStoreAsync(store => store.AuditTrail.CountAsync(Cancel)));
        Assert.Contains("\"line\":\"row contact\"", entry.Before!, StringComparison.Ordinal);
        Assert.DoesNotContain("\"opportunity:", entry.After!, StringComparison.Ordinal);
        foreach (var action in new[] { "read", "create", "update", "delete", "assign", "share", "export" })
        {
            var was = contactBefore.GetValueOrDefault(action) ?? "none";
            Assert.Equal(was != "business_unit", entry.After!.Contains($"\"contact:{action}\":\"business_unit\"", StringComparison.Ordinal));
            if (was != "business_unit")
            {
                Assert.Contains($"\"contact:{action}\":\"{was}\"", entry.Before!, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task A_whole_column_is_set_across_every_entity_in_one_change()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/roles/sales_manager/clone", new { id = "column_role", name = "Column role" })).Status);

        var cleared = await admin.SendAsync(HttpMethod.Put, "admin/api/roles/column_role/columns/read", new { depth = "none" });
        var privileges = (await admin.GetAsync("admin/api/roles/column_role")).Json.GetProperty("privileges");

        Assert.Equal(HttpStatusCode.NoContent, cleared.Status);
        Assert.All(privileges.EnumerateObject(), row => Assert.False(row.Value.TryGetProperty("read", out _), $"{row.Name} still has read"));
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.TargetId == "column_role" && e.Action == "role.privileges", Cancel));
        Assert.Contains("\"line\":\"column read\"", entry.After!, StringComparison.Ordinal);
        Assert.Contains("\"contact:read\":\"none\"", entry.After!, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rows/contact", "{\"depth\":\"everywhere\"}", "depth")]
    [InlineData("rows/no_such_entity", "{\"depth\":\"own\"}", "entity")]
    [InlineData("columns/fly", "{\"depth\":\"own\"}", "action")]
    public async Task A_bad_row_or_column_change_is_refused_naming_the_parameter(string path, string body, string field)
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var refused = await admin.SendRawAsync(HttpMethod.Put, $"admin/api/roles/sales_rep/{path}", body);

        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.NotNull(refused.Error(field));
    }

    [Fact]
    public async Task A_role_admin_cannot_clone_or_widen_a_column_into_privileges_he_does_not_hold()
    {
        using (var secops = await AdminApi.SecOpsAsync(host))
        {
            var role = await secops.SendAsync(HttpMethod.Post, "admin/api/roles", new
            {
                id = "role_maker",
                name = "Role maker",
                privileges = new Dictionary<string, Dictionary<string, string>>
                {
                    ["security_role"] = new() { ["read"] = "organization", ["create"] = "organization", ["update"] = "organization" },
                },
            });
            Assert.Equal(HttpStatusCode.Created, role.Status);
        }

        var (maker, _) = await AdminApi.ApplicationUserAsync(host, "role-maker", "security", "role_maker");
        using var _ = maker;

        var clone = await maker.SendAsync(HttpMethod.Post, "admin/api/roles/security_admin/clone", new { id = "my_admin", name = "My admin" });
        var column = await maker.SendAsync(HttpMethod.Put, "admin/api/roles/sales_rep/columns/export", new { depth = "organization" });
        var ownClone = await maker.SendAsync(HttpMethod.Post, "admin/api/roles/role_maker/clone", new { id = "role_maker_2", name = "Role maker 2" });

        Assert.Equal(HttpStatusCode.Forbidden, clone.Status);
        Assert.Contains("cannot grant", clone.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, column.Status);
        Assert.Contains("cannot grant", column.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, ownClone.Status);
        using var secopsAfter = await AdminApi.SecOpsAsync(host);
        Assert.Equal(HttpStatusCode.NotFound, (await secopsAfter.GetAsync("admin/api/roles/my_admin")).Status);
        Assert.DoesNotContain((await secopsAfter.GetAsync("admin/api/roles/sales_rep")).Json.GetProperty("privileges").EnumerateObject(),
            row => row.Value.TryGetProperty("export", out var depth) && depth.GetString() == "organization");
    }

    [Fact]
    public async Task The_openapi_document_describes_clone_rows_columns_and_the_business_unit_operations()
    {
        using var http = host.CreateClient();
        using var document = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(new Uri("admin/api/openapi/admin.json", UriKind.Relative), Cancel));
        var summaries = document.RootElement.GetProperty("paths").EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject().Select(op => (Key: $"{op.Name} {path.Name.TrimEnd('/')}", Summary: op.Value.TryGetProperty("summary", out var s) ? s.GetString() : null)))
            .ToDictionary(op => op.Key, op => op.Summary, StringComparer.Ordinal);

        foreach (var operation in new[]
        {
            "post /admin/api/roles/{id}/clone", "put /admin/api/roles/{id}/rows/{entity}", "put /admin/api/roles/{id}/columns/{action}",
            "get /admin/api/business-units", "post /admin/api/business-units", "put /admin/api/business-units/{id}", "delete /admin/api/business-units/{id}",
        })
        {
            Assert.True(summaries.TryGetValue(operation, out var summary) && !string.IsNullOrWhiteSpace(summary), $"{operation} is missing or has no summary");
        }
    }
}
