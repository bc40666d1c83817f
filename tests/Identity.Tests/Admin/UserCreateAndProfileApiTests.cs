using System.Net;
using System.Text.Json;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// Creating a person with a manager and editing their name and e-mail address through the admin API over real HTTP
/// (issue 13): one operation each for the API and the users page, audited, refused outside the caller's business units,
/// and a stale version refused naming it (RFC 9110 §13.1.1).
/// </summary>
public sealed class UserCreateAndProfileApiTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task A_user_is_created_with_a_manager_and_the_audit_entry_names_the_manager()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var bob = await IdAsync(admin, "bob");

        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/users",
            new { user_name = "hannah", display_name = "Hannah Hire", email = "hannah@test.example", business_unit = "sales-west", manager = bob });

        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var id = created.Json.GetProperty("id").GetString()!;
        var user = (await admin.GetAsync($"admin/api/users/{id}")).Json;
        Assert.Equal(bob, user.GetProperty("manager").GetString());
        Assert.Equal("sales-west", user.GetProperty("business_unit").GetString());
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.Action == "user.create" && e.TargetId == id, Cancel));
        Assert.Contains(bob, entry.After, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_manager_the_caller_may_not_view_or_an_unknown_one_is_refused_naming_manager()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var reply = await admin.SendAsync(HttpMethod.Post, "admin/api/users",
            new { user_name = "ivan", email = "ivan@test.example", business_unit = "sales-west", manager = "no-such-user" });

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Contains("no-such-user", reply.Error("manager"), StringComparison.Ordinal);
        Assert.False(await host.WithStoreAsync(store => store.Users.AnyAsync(u => u.UserName == "ivan", Cancel)));
    }

    [Fact]
    public async Task A_business_unit_admin_creates_users_in_his_unit_only_and_names_no_manager_from_another()
    {
        using var secops = await AdminApi.SecOpsAsync(host);
        var role = await secops.GetAsync("admin/api/roles/west_user_admin");
        var granted = await secops.SendAsync(HttpMethod.Put, "admin/api/roles/west_user_admin/privileges/system_user/create", new { depth = "business_unit" }, role.ETag);
        Assert.True(granted.Status == HttpStatusCode.NoContent, granted.Text);
        var ed = await IdAsync(secops, "ed");
        var (westApi, _) = await AdminApi.ApplicationUserAsync(host, "west-creator", "sales-west", "west_user_admin");
        using var west = westApi;

        var outside = await west.SendAsync(HttpMethod.Post, "admin/api/users", new { user_name = "east-plant", email = "east-plant@test.example", business_unit = "sales-east" });
        var foreignManager = await west.SendAsync(HttpMethod.Post, "admin/api/users",
            new { user_name = "west-report", email = "west-report@test.example", business_unit = "sales-west", manager = ed });
        var inside = await west.SendAsync(HttpMethod.Post, "admin/api/users", new { user_name = "west-hire", email = "west-hire@test.example", business_unit = "sales-west" });

        Assert.Equal(HttpStatusCode.Forbidden, outside.Status);
        Assert.Contains("Sales East", outside.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, foreignManager.Status);
        Assert.False(string.IsNullOrEmpty(foreignManager.Error("manager")));
        Assert.True(inside.Status == HttpStatusCode.Created, inside.Text);
        Assert.False(await host.WithStoreAsync(store => store.Users.AnyAsync(u => u.UserName == "east-plant" || u.UserName == "west-report", Cancel)));
    }

    [Fact]
    public async Task A_users_name_and_email_are_edited_with_if_match_and_audited_as_user_profile()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var id = await CreateAsync(admin, "jules");
        var before = await admin.GetAsync($"admin/api/users/{id}");

        var changed = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}", new { display_name = "Jules Renamed", email = "jules.renamed@test.example" }, before.ETag);

        Assert.True(changed.Status == HttpStatusCode.NoContent, changed.Text);
        var after = (await admin.GetAsync($"admin/api/users/{id}")).Json;
        Assert.Equal("Jules Renamed", after.GetProperty("display_name").GetString());
        Assert.Equal("jules.renamed@test.example", after.GetProperty("email").GetString());
        Assert.NotEqual(before.Json.GetProperty("version").GetString(), after.GetProperty("version").GetString());
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.Action == "user.profile" && e.TargetId == id, Cancel));
        Assert.Contains("jules@test.example", entry.Before, StringComparison.Ordinal);
        Assert.Contains("jules.renamed@test.example", entry.After, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stale_version_is_a_conflict_naming_version_and_the_other_change_is_kept()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var id = await CreateAsync(admin, "kim");
        var stale = (await admin.GetAsync($"admin/api/users/{id}")).ETag;
        var first = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}", new { display_name = "Kim First" }, stale);
        Assert.Equal(HttpStatusCode.NoContent, first.Status);

        var second = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}", new { display_name = "Kim Second" }, stale);

        Assert.Equal(HttpStatusCode.Conflict, second.Status);
        Assert.False(string.IsNullOrEmpty(second.Error("version")));
        Assert.Contains("changed by someone else", second.Detail, StringComparison.Ordinal);
        Assert.Equal("Kim First", (await admin.GetAsync($"admin/api/users/{id}")).Json.GetProperty("display_name").GetString());
    }

    [Theory]
    [InlineData("not-an-address")]
    [InlineData("")]
    public async Task A_bad_email_address_is_refused_naming_email_and_nothing_changes(string email)
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var id = await CreateAsync(admin, "lee-" + email.Length);

        var reply = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}", new { display_name = "Lee Changed", email });

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.False(string.IsNullOrEmpty(reply.Error("email")));
        var user = (await admin.GetAsync($"admin/api/users/{id}")).Json;
        Assert.Equal($"lee-{email.Length}@test.example", user.GetProperty("email").GetString());
        Assert.NotEqual("Lee Changed", user.GetProperty("display_name").GetString());
    }

    [Fact]
    public async Task A_business_unit_admin_cannot_edit_a_user_outside_his_unit()
    {
        using var secops = await AdminApi.SecOpsAsync(host);
        var ed = await IdAsync(secops, "ed");
        var (westApi, _) = await AdminApi.ApplicationUserAsync(host, "west-editor", "sales-west", "west_user_admin");
        using var west = westApi;

        var reply = await west.SendAsync(HttpMethod.Put, $"admin/api/users/{ed}", new { display_name = "Ed Renamed by West" });

        Assert.Equal(HttpStatusCode.Forbidden, reply.Status);
        Assert.Equal("Ed East", (await secops.GetAsync($"admin/api/users/{ed}")).Json.GetProperty("display_name").GetString());
    }

    [Fact]
    public async Task The_openapi_document_describes_the_profile_edit_and_the_manager_at_creation()
    {
        using var http = host.CreateClient();
        var document = JsonDocument.Parse(await http.GetStringAsync(new Uri("admin/api/openapi/admin.json", UriKind.Relative), Cancel)).RootElement;
        var paths = document.GetProperty("paths").EnumerateObject().ToDictionary(p => p.Name.TrimEnd('/'), p => p.Value, StringComparer.Ordinal);

        var put = paths["/admin/api/users/{id}"].GetProperty("put");
        Assert.Contains("If-Match", put.GetProperty("summary").GetString(), StringComparison.Ordinal);
        Assert.Contains("manager", paths["/admin/api/users"].GetProperty("post").GetProperty("summary").GetString(), StringComparison.Ordinal);
        var schemas = document.GetProperty("components").GetProperty("schemas");
        Assert.True(schemas.GetProperty("UserProfileBody").GetProperty("properties").TryGetProperty("email", out _));
        Assert.True(schemas.GetProperty("UserBody").GetProperty("properties").TryGetProperty("manager", out _));
    }

    private static async Task<string> CreateAsync(AdminApi admin, string name)
    {
        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/users", new { user_name = name, display_name = name, email = name + "@test.example", business_unit = "sales-east" });
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        return created.Json.GetProperty("id").GetString()!;
    }

    private static async Task<string> IdAsync(AdminApi admin, string userName) =>
        (await admin.GetAsync($"admin/api/users?q={userName}&kind=people")).Json.EnumerateArray()
            .Single(u => u.GetProperty("user_name").GetString() == userName).GetProperty("id").GetString()!;
}
