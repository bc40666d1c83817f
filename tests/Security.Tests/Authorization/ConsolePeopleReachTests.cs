using System.Net;
using static CrmSecurity.Security.Tests.Authorization.AdminConsole;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// The console's new daily tasks (issue 13) attacked by the business-unit admin (OWASP ASVS 4.0.3 V4.1.3 least privilege,
/// V4.2.1 no access to objects outside one's scope): wade administers Sales West only, so he sets no dates on, assigns no
/// field security profile to, and lists or revokes no share of anyone or anything in Sales East; and field security
/// profiles, which belong to the whole organisation, are created and deleted only at organization depth.
/// </summary>
public sealed class ConsolePeopleReachTests(AdminConsoleHost host) : IClassFixture<AdminConsoleHost>
{
    [Fact]
    public async Task A_business_unit_admin_sets_no_hire_or_termination_date_outside_his_unit()
    {
        var wade = await host.AdminTokenOf("wade");
        var secops = await SecOpsTokenAsync(host);

        var outside = await PutAsync(host, wade, $"admin/api/users/{DemoIds.Of("ed")}/employment", new { hired = "2020-01-01", terminated = "2020-01-02" });
        var inside = await PutAsync(host, wade, $"admin/api/users/{DemoIds.Of("bob")}/employment", new { hired = "2019-06-01" });
        var ed = (await GetAsync(host, secops, $"admin/api/users/{DemoIds.Of("ed")}")).Json;

        Assert.Equal(HttpStatusCode.Forbidden, outside.Status);
        Assert.Contains("Sales East", outside.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, inside.Status);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, ed.GetProperty("terminated").ValueKind);
    }

    [Fact]
    public async Task A_business_unit_admin_assigns_no_field_security_profile_to_a_user_or_team_outside_his_unit()
    {
        var wade = await host.AdminTokenOf("wade");

        // He holds every grant of sales_contact_details himself, so only the unit stops him.
        var user = await PutAsync(host, wade, $"admin/api/users/{DemoIds.Of("ed")}/field-security-profiles", new { field_security_profiles = new[] { "sales_contact_details" } });
        var team = await PutAsync(host, wade, "admin/api/teams/east-sales/field-security-profiles", new { field_security_profiles = new[] { "sales_contact_details", "finance_banking" } });
        var inUnit = await PutAsync(host, wade, $"admin/api/users/{DemoIds.Of("alice")}/field-security-profiles", new { field_security_profiles = new[] { "sales_contact_details" } });
        var escalation = await PutAsync(host, wade, $"admin/api/users/{DemoIds.Of("alice")}/field-security-profiles", new { field_security_profiles = new[] { "finance_banking" } });

        Assert.Equal(HttpStatusCode.Forbidden, user.Status);
        Assert.Contains("Sales East", user.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, team.Status);
        Assert.Equal(HttpStatusCode.NoContent, inUnit.Status);
        Assert.Equal(HttpStatusCode.Forbidden, escalation.Status);
        Assert.Contains("cannot grant", escalation.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_business_unit_admin_creates_and_deletes_no_field_security_profile()
    {
        var wade = await host.AdminTokenOf("wade");

        var create = await PostAsync(host, wade, "admin/api/field-security-profiles", new { id = "west_only", name = "West only" });
        var delete = await SendAsync(host, wade, HttpMethod.Delete, "admin/api/field-security-profiles/marketing_contact_details?remove_assignments=true");
        var profiles = (await GetAsync(host, await SecOpsTokenAsync(host), "admin/api/field-security-profiles")).Json.EnumerateArray().Select(p => p.GetProperty("id").GetString()).ToList();

        Assert.Equal(HttpStatusCode.Forbidden, create.Status);
        Assert.Equal(HttpStatusCode.Forbidden, delete.Status);
        Assert.DoesNotContain("west_only", profiles);
        Assert.Contains("marketing_contact_details", profiles);
    }

    [Fact]
    public async Task A_business_unit_admin_neither_sees_nor_revokes_a_share_of_a_record_in_another_unit()
    {
        var wade = await host.AdminTokenOf("wade");
        var dave = await host.AdminTokenOf("dave");
        var east = await PostAsync(host, dave, "admin/api/shares",
            new { entity = "contact", record_id = "c-east-console", record_business_unit = "sales-east", principal_kind = "user", principal_id = DemoIds.Of("ed"), actions = new[] { "read" } });
        var west = await PostAsync(host, dave, "admin/api/shares",
            new { entity = "contact", record_id = "c-west-console", record_business_unit = "sales-west", principal_kind = "user", principal_id = DemoIds.Of("bob"), actions = new[] { "read" } });
        Assert.True(east.Status == HttpStatusCode.Created, east.ToString());
        Assert.True(west.Status == HttpStatusCode.Created, west.ToString());
        var eastId = east.Json.GetProperty("id").GetString();

        var listed = (await GetAsync(host, wade, "admin/api/shares?entity=contact")).Json.EnumerateArray().Select(s => s.GetProperty("record_id").GetString()).ToList();
        var byName = (await GetAsync(host, wade, "admin/api/shares?user=ed")).Json.GetArrayLength();
        var revoke = await SendAsync(host, wade, HttpMethod.Delete, $"admin/api/shares/{eastId}");
        var stillListed = (await GetAsync(host, dave, "admin/api/shares?user=ed")).Json.EnumerateArray().Select(s => s.GetProperty("id").GetString()).ToList();

        Assert.Contains("c-west-console", listed);
        Assert.DoesNotContain("c-east-console", listed);
        Assert.Equal(0, byName);
        Assert.Equal(HttpStatusCode.Forbidden, revoke.Status);
        Assert.Contains(eastId, stillListed);
    }
}
