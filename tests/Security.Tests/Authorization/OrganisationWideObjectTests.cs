using System.Net;
using static CrmSecurity.Security.Tests.Authorization.AdminConsole;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// Red-team finding 10: admin checks ignored depth on organisation-wide objects. A business-unit admin whose role held
/// update on security_role at business-unit depth edited the organisation-wide <c>sales_rep</c> role. Roles, field security
/// profiles and OIDC clients belong to the whole organisation: every right on them needs organization depth.
/// </summary>
public sealed class OrganisationWideObjectTests(AdminConsoleHost host) : IClassFixture<AdminConsoleHost>, IAsyncLifetime
{
    /// <summary>
    /// The misconfiguration the attack relied on: the Sales West admin role is given manage rights on roles, field security
    /// profiles and clients "for its business unit", by a security admin who holds them for the organisation.
    /// </summary>
    public async ValueTask InitializeAsync()
    {
        var secops = await SecOpsTokenAsync(host);
        foreach (var (entity, action) in new[] { ("security_role", "update"), ("security_role", "create"), ("security_role", "delete"), ("field_security_profile", "update"), ("oidc_client", "update"), ("oidc_client", "create"), ("oidc_client", "delete") })
        {
            var reply = await PutAsync(host, secops, $"admin/api/roles/west_user_admin/privileges/{entity}/{action}", new { depth = "business_unit" });
            Assert.True(reply.Status == HttpStatusCode.NoContent, $"{entity}:{action} {reply}");
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task A_business_unit_admin_cannot_edit_the_organisation_wide_sales_rep_role()
    {
        var wade = await AdminTokenAsync(host, "wade");

        // A change wade could grant (he holds invoice read at business_unit_and_children): only the depth rule stops it.
        var cell = await PutAsync(host, wade, "admin/api/roles/sales_rep/privileges/invoice/read", new { depth = "business_unit" });
        var whole = await PutAsync(host, wade, "admin/api/roles/sales_rep", new { name = "Sales representative", privileges = new { invoice = new { read = "business_unit" } } });
        var delete = await SendAsync(host, wade, HttpMethod.Delete, "admin/api/roles/marketing");
        var create = await PostAsync(host, wade, "admin/api/roles", new { id = "west_clone", name = "West clone", privileges = new { contact = new { read = "business_unit" } } });
        var role = (await GetAsync(host, await SecOpsTokenAsync(host), "admin/api/roles/sales_rep")).Json;

        Assert.Equal(HttpStatusCode.Forbidden, cell.Status);
        Assert.Contains("organization depth", cell.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, whole.Status);
        Assert.Equal(HttpStatusCode.Forbidden, delete.Status);
        Assert.Equal(HttpStatusCode.Forbidden, create.Status);
        Assert.False(role.GetProperty("privileges").TryGetProperty("invoice", out _), role.ToString());
    }

    [Fact]
    public async Task A_business_unit_admin_cannot_edit_a_field_security_profile()
    {
        var wade = await AdminTokenAsync(host, "wade");

        var reply = await PutAsync(host, wade, "admin/api/field-security-profiles/sales_contact_details",
            new { permissions = new { contact = new { phone = "none" } } });

        Assert.Equal(HttpStatusCode.Forbidden, reply.Status);
        Assert.Contains("organization depth", reply.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_business_unit_admin_cannot_revoke_a_client()
    {
        var wade = await AdminTokenAsync(host, "wade");

        var admin = await PostAsync(host, wade, "admin/api/clients/demo-crm/revoke");
        var incident = await PostAsync(host, wade, "identity/admin/clients/demo-crm/revoke", new { reason = "not his to revoke" });

        Assert.Equal(HttpStatusCode.Forbidden, admin.Status);
        Assert.Equal(HttpStatusCode.Forbidden, incident.Status);
    }

    [Fact]
    public async Task A_business_unit_admin_cannot_register_change_rotate_or_delete_a_client()
    {
        // Wade's role now holds create, update and delete on oidc_client at business-unit depth: a client is the whole
        // organisation's (it signs in anyone), so only organization depth may manage one.
        var wade = await AdminTokenAsync(host, "wade");

        var create = await PostAsync(host, wade, "admin/api/clients", new
        {
            client_id = "west-backdoor", client_type = "confidential", grant_types = new[] { "client_credentials" }, scopes = new[] { "identity.admin" },
        });
        var update = await PutAsync(host, wade, "admin/api/clients/demo-spa", new { redirect_uris = new[] { "https://attacker.example/cb" } });
        var rotate = await PostAsync(host, wade, "admin/api/clients/demo-crm/secrets", new { overlap = "0" });
        var delete = await SendAsync(host, wade, HttpMethod.Delete, "admin/api/clients/demo-audit");
        var secops = await SecOpsTokenAsync(host);
        var spa = (await GetAsync(host, secops, "admin/api/clients/demo-spa")).Json;

        foreach (var refused in new[] { create, update, rotate, delete })
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
            Assert.Contains("organization depth", refused.Detail, StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(host, secops, "admin/api/clients/west-backdoor")).Status);
        Assert.DoesNotContain(spa.GetProperty("redirect_uris").EnumerateArray(), u => u.GetString()!.Contains("attacker", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(host, secops, "admin/api/clients/demo-audit")).Status);
    }

    [Fact]
    public async Task The_same_change_by_an_organisation_wide_admin_is_allowed()
    {
        var dave = await AdminTokenAsync(host, "dave");

        var reply = await PutAsync(host, dave, "admin/api/roles/marketing/privileges/invoice/read", new { depth = "business_unit" });

        Assert.Equal(HttpStatusCode.NoContent, reply.Status);
    }
}
