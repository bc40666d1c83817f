using System.Net;
using static CrmSecurity.Security.Tests.Authorization.AdminConsole;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// The console's users and teams operations (issue 13) attacked by the business-unit admin (OWASP ASVS 4.0.3 V4.1.3 least
/// privilege, V4.2.1 no access to objects outside one's scope): wade administers Sales West only. He finds nobody of Sales
/// East by searching, sets no manager from or for Sales East, renames, deletes or creates no team outside his unit, and
/// adds or removes no member of a team of Sales East or a person of Sales East to or from his own team.
/// </summary>
public sealed class ConsoleTeamsReachTests(AdminConsoleHost host) : IClassFixture<AdminConsoleHost>
{
    [Fact]
    public async Task A_business_unit_admin_finds_nobody_outside_his_unit_by_search_and_the_count_says_nothing_of_them()
    {
        var wade = await host.AdminTokenOf("wade");

        var byName = await SearchAsync(wade, "q=ed&limit=50");
        var byEmail = await SearchAsync(wade, "q=ed%40demo.example");
        var all = await SearchAsync(wade, "q=demo.example&limit=1");

        Assert.Equal(HttpStatusCode.OK, byName.Status);
        Assert.DoesNotContain(byName.Json.EnumerateArray(), u => u.GetProperty("user_name").GetString() == "ed");
        Assert.Equal(0, byEmail.Json.GetArrayLength());
        Assert.Equal("0", byEmail.Total);
        // alice, bob and wade are in Sales West; nobody else of the demo's people is counted.
        Assert.Equal("3", all.Total);
        Assert.Equal(1, all.Json.GetArrayLength());
    }

    private async Task<(HttpStatusCode Status, System.Text.Json.JsonElement Json, string? Total)> SearchAsync(string token, string query)
    {
        using var http = host.CreateClient(token);
        using var response = await http.GetAsync(new Uri("admin/api/users?" + query, UriKind.Relative), Support.Personas.Cancel);
        var text = await response.Content.ReadAsStringAsync(Support.Personas.Cancel);
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {text}");
        var total = response.Headers.TryGetValues("X-Total-Count", out var values) ? values.Single() : null;
        return (response.StatusCode, System.Text.Json.JsonDocument.Parse(text).RootElement.Clone(), total);
    }

    [Fact]
    public async Task A_business_unit_admin_sets_no_manager_from_or_for_another_unit()
    {
        var wade = await host.AdminTokenOf("wade");
        var secops = await SecOpsTokenAsync(host);

        var fromEast = await PutAsync(host, wade, $"admin/api/users/{DemoIds.Of("alice")}/manager", new { manager = DemoIds.Of("ed") });
        var forEast = await PutAsync(host, wade, $"admin/api/users/{DemoIds.Of("ed")}/manager", new { manager = DemoIds.Of("bob") });
        var inside = await PutAsync(host, wade, $"admin/api/users/{DemoIds.Of("alice")}/manager", new { manager = "" });
        var alice = (await GetAsync(host, secops, $"admin/api/users/{DemoIds.Of("alice")}")).Json;
        var ed = (await GetAsync(host, secops, $"admin/api/users/{DemoIds.Of("ed")}")).Json;

        Assert.Equal(HttpStatusCode.BadRequest, fromEast.Status);
        Assert.Contains("a user you may view", fromEast.Errors("manager").Single(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, forEast.Status);
        Assert.Contains("Sales East", forEast.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, inside.Status);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, alice.GetProperty("manager").ValueKind);
        Assert.NotEqual(DemoIds.Of("bob"), ed.GetProperty("manager").GetString());
    }

    [Fact]
    public async Task A_business_unit_admin_reads_renames_creates_and_deletes_no_team_outside_his_unit()
    {
        var wade = await host.AdminTokenOf("wade");
        var secops = await SecOpsTokenAsync(host);

        var read = await GetAsync(host, wade, "admin/api/teams/east-sales");
        var rename = await PutAsync(host, wade, "admin/api/teams/east-sales", new { name = "Renamed by wade" });
        var create = await PostAsync(host, wade, "admin/api/teams", new { id = "wade-east", name = "Wade's east team", business_unit = "sales-east" });
        var delete = await SendAsync(host, wade, HttpMethod.Delete, "admin/api/teams/east-sales");
        var east = await GetAsync(host, secops, "admin/api/teams/east-sales");
        var readOwn = await GetAsync(host, wade, "admin/api/teams/west-sales");

        Assert.Equal(HttpStatusCode.Forbidden, read.Status);
        Assert.Equal(HttpStatusCode.Forbidden, rename.Status);
        Assert.Equal(HttpStatusCode.Forbidden, create.Status);
        Assert.Equal(HttpStatusCode.Forbidden, delete.Status);
        Assert.Equal(HttpStatusCode.OK, east.Status);
        Assert.Equal("Sales East team", east.Json.GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.OK, readOwn.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(host, secops, "admin/api/teams/wade-east")).Status);
    }

    [Fact]
    public async Task A_business_unit_admin_adds_or_removes_no_member_across_his_units_border()
    {
        var wade = await host.AdminTokenOf("wade");
        var secops = await SecOpsTokenAsync(host);
        var ed = DemoIds.Of("ed");
        var alice = DemoIds.Of("alice");
        var bob = DemoIds.Of("bob");

        var pullEdIn = await PostAsync(host, wade, $"admin/api/teams/west-sales/members/{ed}");
        var pushAliceOut = await PostAsync(host, wade, $"admin/api/teams/east-sales/members/{alice}");
        var removeEd = await SendAsync(host, wade, HttpMethod.Delete, $"admin/api/teams/east-sales/members/{ed}");
        var replaceEast = await PutAsync(host, wade, "admin/api/teams/east-sales/members", new { members = new[] { alice } });
        var replaceWest = await PutAsync(host, wade, "admin/api/teams/west-sales/members", new { members = new[] { alice, bob, ed } });
        var himself = await PostAsync(host, wade, $"admin/api/teams/west-sales/members/{DemoIds.Of("wade")}");
        var east = (await GetAsync(host, secops, "admin/api/teams/east-sales")).Json.GetProperty("members").EnumerateArray().Select(m => m.GetString()).ToList();
        var west = (await GetAsync(host, secops, "admin/api/teams/west-sales")).Json.GetProperty("members").EnumerateArray().Select(m => m.GetString()).ToList();

        // A person he may not view is unknown to him (400), not confirmed to exist; a team he may not assign is refused (403).
        Assert.Equal(HttpStatusCode.BadRequest, pullEdIn.Status);
        Assert.Equal(HttpStatusCode.Forbidden, pushAliceOut.Status);
        Assert.Equal(HttpStatusCode.Forbidden, removeEd.Status);
        Assert.Equal(HttpStatusCode.Forbidden, replaceEast.Status);
        Assert.Equal(HttpStatusCode.BadRequest, replaceWest.Status);
        Assert.Equal(HttpStatusCode.Forbidden, himself.Status);
        Assert.Equal([ed], east);
        Assert.DoesNotContain(ed, west);
        Assert.DoesNotContain(DemoIds.Of("wade"), west);
    }

    [Fact]
    public async Task A_business_unit_admin_disables_unlocks_and_resets_the_second_factor_of_nobody_outside_his_unit()
    {
        var wade = await host.AdminTokenOf("wade");
        var ed = DemoIds.Of("ed");

        var disable = await PostAsync(host, wade, $"admin/api/users/{ed}/disable");
        var unlock = await PostAsync(host, wade, $"admin/api/users/{ed}/unlock");
        var resetMfa = await PostAsync(host, wade, $"admin/api/users/{ed}/reset-mfa");
        var edView = (await GetAsync(host, await SecOpsTokenAsync(host), $"admin/api/users/{ed}")).Json;

        Assert.Equal(HttpStatusCode.Forbidden, disable.Status);
        Assert.Equal(HttpStatusCode.Forbidden, unlock.Status);
        Assert.Equal(HttpStatusCode.Forbidden, resetMfa.Status);
        Assert.False(edView.GetProperty("disabled").GetBoolean());
    }
}
