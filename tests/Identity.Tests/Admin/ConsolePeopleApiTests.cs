using System.Net;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// The security admin's daily tasks through the admin API over real HTTP (issue 13): hire and termination dates on users,
/// field security profiles created, assigned and deleted, record shares listed and revoked; each one audited.
/// </summary>
public sealed class ConsolePeopleApiTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private AuthorizationModel Model => host.Services.GetRequiredService<AuthorizationModel>();

    [Fact]
    public async Task Hire_and_termination_dates_round_trip_audited_with_before_and_after_and_reach_the_people_directory()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var id = await CreateUserAsync(admin, "leaver-1", "sales-east");

        var hired = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}/employment", new { hired = "2023-04-03" });
        var user = await admin.GetAsync($"admin/api/users/{id}");
        var terminated = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}/employment", new { hired = "2023-04-03", terminated = "2026-11-30" }, user.ETag);
        var after = (await admin.GetAsync($"admin/api/users/{id}")).Json;

        Assert.Equal(HttpStatusCode.NoContent, hired.Status);
        Assert.Equal(HttpStatusCode.NoContent, terminated.Status);
        Assert.Equal("2023-04-03", after.GetProperty("hired").GetString());
        Assert.Equal("2026-11-30", after.GetProperty("terminated").GetString());
        var person = host.Services.GetRequiredService<IPeopleDirectory>().Current.People.Single(p => p.UserId == id);
        Assert.Equal(new DateOnly(2023, 4, 3), person.Hired);
        Assert.Equal(new DateOnly(2026, 11, 30), person.Terminated);
        var entries = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.Action == "user.employment" && e.TargetId == id).OrderBy(e => e.Sequence).ToListAsync(Cancel));
        Assert.Equal(2, entries.Count);
        Assert.Equal("{\"hired\":null,\"terminated\":null}", entries[0].Before);
        Assert.Equal("{\"hired\":\"2023-04-03\",\"terminated\":null}", entries[1].Before);
        Assert.Equal("{\"hired\":\"2023-04-03\",\"terminated\":\"2026-11-30\"}", entries[1].After);

        var cleared = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}/employment", new { hired = "2023-04-03", terminated = (string?)null });
        Assert.Equal(HttpStatusCode.NoContent, cleared.Status);
        Assert.Null(Model.Current.User(id)!.Definition.Terminated);
    }

    [Theory]
    [InlineData("2024-05-01", "2024-04-30", "terminated", "before hired")]
    [InlineData("01/05/2024", null, "hired", "yyyy-MM-dd")]
    [InlineData(null, "2024-02-30", "terminated", "is not a date")]
    public async Task Bad_dates_are_refused_as_problems_naming_the_field(string? hired, string? terminated, string field, string message)
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var id = await CreateUserAsync(admin, "bad-dates-" + field + (hired ?? "x").Replace('/', '-'), "sales-east");

        var refused = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}/employment", new { hired, terminated });

        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.Contains(message, refused.Error(field), StringComparison.Ordinal);
        Assert.Null(Model.Current.User(id)!.Definition.Hired);
    }

    [Fact]
    public async Task Nobody_sets_their_own_termination_date()
    {
        using var secops = await AdminApi.SecOpsAsync(host);
        var self = await AdminApiTests.UserIdAsync(secops, AdminApiTests.DemoApplicationUser);

        var refused = await secops.SendAsync(HttpMethod.Put, $"admin/api/users/{self}/employment", new { terminated = "2020-01-01" });

        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        Assert.Null(Model.Current.User(self)!.Definition.Terminated);
    }

    [Fact]
    public async Task A_new_field_security_profile_is_created_assigned_to_a_user_and_a_team_and_grants_its_fields()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var id = await CreateUserAsync(admin, "new-hire-1", "sales-east");
        var contact = Model.Current.EntityIndex("contact");

        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/field-security-profiles",
            new { id = "birthdays", name = "Birthdays", description = "Reads birth dates masked.", permissions = new { contact = new { birth_date = "read" } } });
        var assigned = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}/field-security-profiles", new { field_security_profiles = new[] { "birthdays" } });
        var team = await admin.SendAsync(HttpMethod.Put, "admin/api/teams/east-sales/field-security-profiles", new { field_security_profiles = new[] { "sales_contact_details", "birthdays" } });
        var listed = (await admin.GetAsync("admin/api/field-security-profiles")).Json.EnumerateArray().Single(p => p.GetProperty("id").GetString() == "birthdays");
        var view = (await admin.GetAsync($"admin/api/users/{id}")).Json;

        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal(HttpStatusCode.NoContent, assigned.Status);
        Assert.Equal(HttpStatusCode.NoContent, team.Status);
        Assert.Equal(["birthdays"], view.GetProperty("field_security_profiles").EnumerateArray().Select(p => p.GetString()));
        Assert.Contains(id, listed.GetProperty("users").EnumerateArray().Select(u => u.GetString()));
        Assert.Contains("east-sales", listed.GetProperty("teams").EnumerateArray().Select(t => t.GetString()));
        var snapshot = Model.Current;
        var birthDate = snapshot.Entities[contact].FieldIndex["birth_date"];
        Assert.Equal(FieldGrant.Read, (FieldGrant)snapshot.Classes[snapshot.Users[snapshot.UserIndex(id)].Class].FieldGrants[birthDate]);
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.Action == "user.field_profiles" && e.TargetId == id).SingleAsync(Cancel));
        Assert.Equal("{\"field_security_profiles\":[]}", entry.Before);
        Assert.Equal("{\"field_security_profiles\":[\"Birthdays\"]}", entry.After);
        Assert.True(await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().AnyAsync(e => e.Action == "field_profile.create" && e.TargetId == "birthdays", Cancel)));
    }

    [Fact]
    public async Task Deleting_an_assigned_profile_is_refused_naming_the_holders_unless_the_assignments_go_with_it()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var id = await CreateUserAsync(admin, "holder-1", "sales-east");
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/field-security-profiles", new { id = "short_lived", name = "Short lived" })).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{id}/field-security-profiles", new { field_security_profiles = new[] { "short_lived" } })).Status);

        var refused = await admin.SendAsync(HttpMethod.Delete, "admin/api/field-security-profiles/short_lived", null);
        var stillThere = Model.Current.ProfileIndex("short_lived");
        var deleted = await admin.SendAsync(HttpMethod.Delete, "admin/api/field-security-profiles/short_lived?remove_assignments=true", null);

        Assert.Equal(HttpStatusCode.Conflict, refused.Status);
        Assert.Contains("holder-1", refused.Error("remove_assignments"), StringComparison.Ordinal);
        Assert.True(stillThere >= 0);
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.True(Model.Current.ProfileIndex("short_lived") < 0);
        Assert.Empty(Model.Current.User(id)!.DirectProfiles);
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.Action == "field_profile.delete" && e.TargetId == "short_lived").SingleAsync(Cancel));
        Assert.Contains("\"users\":[\"holder-1\"]", entry.Before!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Creating_a_profile_with_a_taken_id_or_a_bad_grant_is_refused_naming_the_field()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var taken = await admin.SendAsync(HttpMethod.Post, "admin/api/field-security-profiles", new { id = "finance_banking", name = "Another" });
        var badGrant = await admin.SendAsync(HttpMethod.Post, "admin/api/field-security-profiles", new { id = "typo", name = "Typo", permissions = new { contact = new { email = "reed" } } });
        var noName = await admin.SendAsync(HttpMethod.Post, "admin/api/field-security-profiles", new { id = "nameless" });

        Assert.Equal(HttpStatusCode.Conflict, taken.Status);
        Assert.Contains("finance_banking", taken.Error("id"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, badGrant.Status);
        Assert.Contains("reed", badGrant.Error("permissions.contact.email"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, noName.Status);
        Assert.Contains("name is required", noName.Error("name"), StringComparison.Ordinal);
        Assert.True(Model.Current.ProfileIndex("typo") < 0);
    }

    [Fact]
    public async Task Shares_are_listed_by_user_and_entity_and_revoked_with_an_audit_entry()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var frank = await AdminApiTests.UserIdAsync(admin, "frank");
        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/shares",
            new { entity = "invoice", record_id = "inv-list-1", record_business_unit = "sales-west", principal_kind = "user", principal_id = frank, actions = new[] { "read" } });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        var shareId = created.Json.GetProperty("id").GetString()!;

        var byUser = (await admin.GetAsync($"admin/api/shares?user=frank&entity=invoice")).Json.EnumerateArray().ToList();
        var otherEntity = (await admin.GetAsync($"admin/api/shares?user=frank&entity=contact")).Json.EnumerateArray().ToList();
        var badEntity = await admin.GetAsync("admin/api/shares?entity=invoices");
        var revoked = await admin.SendAsync(HttpMethod.Delete, $"admin/api/shares/{shareId}", null);
        var afterRevoke = (await admin.GetAsync($"admin/api/shares?user={frank}")).Json.EnumerateArray().ToList();

        var listed = Assert.Single(byUser, s => s.GetProperty("id").GetString() == shareId);
        Assert.Equal("frank", listed.GetProperty("principal_name").GetString());
        Assert.Equal("Sales West", listed.GetProperty("record_business_unit_name").GetString());
        Assert.DoesNotContain(otherEntity, s => s.GetProperty("id").GetString() == shareId);
        Assert.Equal(HttpStatusCode.BadRequest, badEntity.Status);
        Assert.Contains("invoices", badEntity.Error("entity"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, revoked.Status);
        Assert.DoesNotContain(afterRevoke, s => s.GetProperty("id").GetString() == shareId);
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.Action == "share.delete" && e.TargetId == shareId).SingleAsync(Cancel));
        Assert.Contains("inv-list-1", entry.Before!, StringComparison.Ordinal);
        Assert.Null(entry.After);
    }

    [Fact]
    public async Task The_openapi_document_describes_the_new_operations()
    {
        using var http = host.CreateClient();
        using var document = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(new Uri("admin/api/openapi/admin.json", UriKind.Relative), Cancel));
        var operations = document.RootElement.GetProperty("paths").EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject().Select(op => $"{op.Name} {path.Name.TrimEnd('/')}")).ToHashSet(StringComparer.Ordinal);

        Assert.Contains("put /admin/api/users/{id}/employment", operations);
        Assert.Contains("put /admin/api/users/{id}/field-security-profiles", operations);
        Assert.Contains("put /admin/api/teams/{id}/field-security-profiles", operations);
        Assert.Contains("post /admin/api/field-security-profiles", operations);
        Assert.Contains("delete /admin/api/field-security-profiles/{id}", operations);
        Assert.Contains("get /admin/api/shares", operations);
    }

    private static async Task<string> CreateUserAsync(AdminApi admin, string name, string unit)
    {
        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/users", new { user_name = name, email = name + "@test.example", business_unit = unit });
        Assert.True(created.Status == HttpStatusCode.Created, $"{created.Status} {created.Text}");
        return created.Json.GetProperty("id").GetString()!;
    }
}
