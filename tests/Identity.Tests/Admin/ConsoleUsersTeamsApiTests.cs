using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// The users and teams console through the admin API over real HTTP (issue 13): a server-side search with paging and sorting,
/// the account actions (lockout shown and ended, second factor reset down to the passkeys), the manager, and teams created,
/// renamed, given members and roles and deleted; each audited, each described in the OpenAPI document.
/// </summary>
public sealed class ConsoleUsersTeamsApiTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private AuthorizationModel Model => host.Services.GetRequiredService<AuthorizationModel>();

    [Fact]
    public async Task The_users_list_is_searched_sorted_and_paged_by_the_server_with_the_total_and_the_next_page_linked()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        for (var i = 0; i < 23; i++)
        {
            await CreateUserAsync(admin, $"pager-{i:00}", "sales-east", $"Pager Person {i:00}");
        }

        var first = await ListAsync(admin, "q=pager-&limit=10");
        var next = await ListAsync(admin, first.Next!);
        var last = await ListAsync(admin, "q=PAGER-&limit=10&offset=20");
        var descending = await ListAsync(admin, "q=pager&sort=display_name&order=desc&limit=3");
        var byDisplayName = await ListAsync(admin, "q=person%2017");
        var byEmail = await ListAsync(admin, "q=pager-05%40TEST.example");
        var wildcard = await ListAsync(admin, "q=pager_%25");

        Assert.Equal(23, first.Total);
        Assert.Equal(["pager-00", "pager-01", "pager-02"], first.Names.Take(3));
        Assert.Equal(10, first.Names.Count);
        Assert.Contains("offset=10", first.Next, StringComparison.Ordinal);
        Assert.Null(first.Previous);
        Assert.Equal("pager-10", next.Names[0]);
        Assert.NotNull(next.Previous);
        Assert.Equal(["pager-20", "pager-21", "pager-22"], last.Names);
        Assert.Null(last.Next);
        Assert.Equal(["pager-22", "pager-21", "pager-20"], descending.Names);
        Assert.Equal(["pager-17"], byDisplayName.Names);
        Assert.Equal(["pager-05"], byEmail.Names);
        Assert.Empty(wildcard.Names); // % and _ are text, not patterns
    }

    [Fact]
    public async Task Application_users_of_clients_are_listed_apart_from_people_with_their_client()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var applications = await ListAsync(admin, "kind=applications&limit=500");
        var people = await ListAsync(admin, "kind=people&limit=500");

        var secops = Assert.Single(applications.Users, u => u.GetProperty("user_name").GetString() == AdminApiTests.DemoApplicationUser);
        Assert.Equal("demo-secops", secops.GetProperty("application_client_id").GetString());
        Assert.All(applications.Users, u => Assert.Equal(JsonValueKind.String, u.GetProperty("application_client_id").ValueKind));
        Assert.Contains("alice", people.Names);
        Assert.DoesNotContain(AdminApiTests.DemoApplicationUser, people.Names);
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=501", "limit")]
    [InlineData("offset=-1", "offset")]
    [InlineData("sort=password_hash", "sort")]
    [InlineData("kind=robots", "kind")]
    [InlineData("status=sleeping", "status")]
    public async Task A_bad_search_parameter_is_refused_naming_it(string query, string field)
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var reply = await admin.GetAsync("admin/api/users?" + query);

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.False(string.IsNullOrEmpty(reply.Error(field)));
    }

    [Fact]
    public async Task A_locked_user_is_shown_locked_found_by_status_and_unlocked_through_one_audited_call()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var id = await CreateUserAsync(admin, "locked-1", "sales-east");
        await host.WithStoreAsync(async store =>
        {
            var user = await store.Users.SingleAsync(u => u.Id == id, Cancel);
            user.LockoutEnd = DateTimeOffset.UtcNow.AddMinutes(15);
            user.AccessFailedCount = 5;
            return await store.SaveChangesAsync(Cancel);
        });

        var view = (await admin.GetAsync($"admin/api/users/{id}")).Json;
        var locked = await ListAsync(admin, "status=locked&limit=500");
        var unlock = await admin.SendAsync(HttpMethod.Post, $"admin/api/users/{id}/unlock", null);
        var after = (await admin.GetAsync($"admin/api/users/{id}")).Json;
        var stillLocked = await ListAsync(admin, "status=locked&limit=500");

        Assert.True(view.GetProperty("locked_out").GetBoolean());
        Assert.Equal(JsonValueKind.String, view.GetProperty("locked_until").ValueKind);
        Assert.Contains("locked-1", locked.Names);
        Assert.Equal(HttpStatusCode.NoContent, unlock.Status);
        Assert.False(after.GetProperty("locked_out").GetBoolean());
        Assert.DoesNotContain("locked-1", stillLocked.Names);
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.Action == "user.unlock" && e.TargetId == id, Cancel));
        Assert.Contains("\"failed_attempts\":5", entry.Before!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_disabled_user_is_found_as_disabled_and_enabled_again()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var id = await CreateUserAsync(admin, "disabled-1", "sales-east");

        var disable = await admin.SendAsync(HttpMethod.Post, $"admin/api/users/{id}/disable", null);
        var disabled = await ListAsync(admin, "status=disabled&q=disabled-1");
        var active = await ListAsync(admin, "status=active&q=disabled-1");
        var enable = await admin.SendAsync(HttpMethod.Post, $"admin/api/users/{id}/enable", null);

        Assert.Equal(HttpStatusCode.NoContent, disable.Status);
        Assert.Equal(["disabled-1"], disabled.Names);
        Assert.True(disabled.Users[0].GetProperty("disabled").GetBoolean());
        Assert.Empty(active.Names);
        Assert.Equal(HttpStatusCode.NoContent, enable.Status);
        Assert.False(Model.Current.User(id)!.Disabled);
        var actions = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == id).OrderBy(e => e.Sequence).Select(e => e.Action).ToListAsync(Cancel));
        Assert.Equal(["user.create", "user.disable", "user.enable"], actions);
    }

    [Fact]
    public async Task Resetting_the_second_factor_removes_the_authenticator_the_recovery_codes_and_the_passkeys()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var id = await CreateUserAsync(admin, "mfa-1", "sales-east");
        await using (var scope = host.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<CrmUser>>();
            var user = (await users.FindByIdAsync(id))!;
            Assert.True((await users.ResetAuthenticatorKeyAsync(user)).Succeeded);
            Assert.NotNull(await users.GenerateNewTwoFactorRecoveryCodesAsync(user, 5));
            Assert.True((await users.SetTwoFactorEnabledAsync(user, true)).Succeeded);
            Assert.True((await users.AddOrUpdatePasskeyAsync(user, new UserPasskeyInfo([1, 2, 3, 4], [5, 6, 7], DateTimeOffset.UtcNow, 0, null, true, false, false, [8], [9]) { Name = "Lost phone" })).Succeeded);
        }

        var before = (await admin.GetAsync($"admin/api/users/{id}")).Json;
        var reset = await admin.SendAsync(HttpMethod.Post, $"admin/api/users/{id}/reset-mfa", null);
        var after = (await admin.GetAsync($"admin/api/users/{id}")).Json;

        Assert.True(before.GetProperty("mfa").GetBoolean());
        Assert.Equal(HttpStatusCode.NoContent, reset.Status);
        Assert.False(after.GetProperty("mfa").GetBoolean());
        await using (var scope = host.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<CrmUser>>();
            var user = (await users.FindByIdAsync(id))!;
            Assert.Null(await users.GetAuthenticatorKeyAsync(user));
            Assert.Equal(0, await users.CountRecoveryCodesAsync(user));
            Assert.Empty(await users.GetPasskeysAsync(user));
        }

        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.Action == "user.reset_mfa" && e.TargetId == id, Cancel));
        Assert.Contains("\"passkeys_removed\":1", entry.After!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_manager_is_set_and_cleared_and_a_loop_is_refused_naming_the_field()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var boss = await CreateUserAsync(admin, "boss-1", "sales-east");
        var report = await CreateUserAsync(admin, "report-1", "sales-east");

        var set = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{report}/manager", new { manager = boss });
        var loop = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{boss}/manager", new { manager = report });
        var view = (await admin.GetAsync($"admin/api/users/{report}")).Json;
        var stale = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{report}/manager", new { manager = "", version = "not-the-version" });
        var cleared = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{report}/manager", new { manager = (string?)null });

        Assert.Equal(HttpStatusCode.NoContent, set.Status);
        Assert.Equal(boss, view.GetProperty("manager").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, loop.Status);
        Assert.Contains("cannot loop", loop.Error("manager"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, stale.Status);
        Assert.Equal(HttpStatusCode.NoContent, cleared.Status);
        Assert.Equal(-1, Model.Current.User(report)!.Manager);
        Assert.True(await host.WithStoreAsync(store => store.AuditTrail.AnyAsync(e => e.Action == "user.profile" && e.TargetId == report && e.After!.Contains(boss), Cancel)));
    }

    [Fact]
    public async Task A_team_is_created_with_a_member_renamed_given_roles_and_members_and_deleted_each_audited()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var first = await CreateUserAsync(admin, "teamer-1", "sales-east");
        var second = await CreateUserAsync(admin, "teamer-2", "sales-east");

        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/teams", new { id = "east-key-accounts", name = "East key accounts", business_unit = "sales-east", roles = new[] { "sales_rep" }, members = new[] { first } });
        var read = await admin.GetAsync("admin/api/teams/east-key-accounts");
        var taken = await admin.SendAsync(HttpMethod.Put, "admin/api/teams/east-key-accounts", new { name = "Sales East team" });
        var renamed = await admin.SendAsync(HttpMethod.Put, "admin/api/teams/east-key-accounts", new { name = "East strategic accounts" }, read.ETag);
        var staleAdd = await admin.SendAsync(HttpMethod.Post, $"admin/api/teams/east-key-accounts/members/{second}", null, read.ETag);
        var added = await admin.SendAsync(HttpMethod.Post, $"admin/api/teams/east-key-accounts/members/{second}", null);
        var afterAdd = (await admin.GetAsync("admin/api/teams/east-key-accounts")).Json;
        var removed = await admin.SendAsync(HttpMethod.Delete, $"admin/api/teams/east-key-accounts/members/{first}", null);
        var replaced = await admin.SendAsync(HttpMethod.Put, "admin/api/teams/east-key-accounts/members", new { members = new[] { first } });
        var unknown = await admin.SendAsync(HttpMethod.Put, "admin/api/teams/east-key-accounts/members", new { members = new[] { first, "no-such-user" } });
        var roles = await admin.SendAsync(HttpMethod.Put, "admin/api/teams/east-key-accounts/roles", new { roles = Array.Empty<string>() });
        var final = (await admin.GetAsync("admin/api/teams/east-key-accounts")).Json;

        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.Equal([first], read.Json.GetProperty("members").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(["sales_rep"], read.Json.GetProperty("roles").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(HttpStatusCode.Conflict, taken.Status);
        Assert.Contains("unique", taken.Error("name"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, renamed.Status);
        Assert.Equal(HttpStatusCode.Conflict, staleAdd.Status);
        Assert.Equal(HttpStatusCode.NoContent, added.Status);
        Assert.Equal("East strategic accounts", afterAdd.GetProperty("name").GetString());
        Assert.Equal(new[] { first, second }.Order(), afterAdd.GetProperty("members").EnumerateArray().Select(m => m.GetString()!).Order());
        Assert.Equal(HttpStatusCode.NoContent, removed.Status);
        Assert.Equal(HttpStatusCode.NoContent, replaced.Status);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.Status);
        Assert.Contains("no-such-user", unknown.Error("members[1]"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, roles.Status);
        Assert.Equal([first], final.GetProperty("members").EnumerateArray().Select(m => m.GetString()));
        Assert.Empty(final.GetProperty("roles").EnumerateArray());

        // Membership is part of the model at once: the member holds the team.
        var snapshot = Model.Current;
        Assert.Contains(snapshot.TeamIndex("east-key-accounts"), snapshot.User(first)!.Teams);
        Assert.DoesNotContain(snapshot.TeamIndex("east-key-accounts"), snapshot.User(second)!.Teams);

        var deleted = await admin.SendAsync(HttpMethod.Delete, "admin/api/teams/east-key-accounts", null);
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("admin/api/teams/east-key-accounts")).Status);
        var audit = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == "east-key-accounts").OrderBy(e => e.Sequence).ToListAsync(Cancel));
        Assert.Equal(["team.create", "team.update", "team.members", "team.members", "team.members", "team.roles", "team.delete"], audit.Select(e => e.Action));
        Assert.Equal("{\"members\":[\"teamer-1\",\"teamer-2\"]}", audit[3].Before);
        Assert.Equal("{\"members\":[\"teamer-2\"]}", audit[3].After);
    }

    [Fact]
    public async Task Nobody_adds_themselves_to_a_team_or_hands_out_a_team_whose_roles_they_do_not_hold()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        // A Sales East user administrator: assigns users and teams of Sales East, holds the sales manager's privileges only.
        var (robot, robotId) = await AdminApi.ApplicationUserAsync(host, "east-team-robot", "sales-east", "west_user_admin");
        using var _ = robot;
        var target = await CreateUserAsync(admin, "teamer-3", "sales-east");
        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/teams", new { id = "east-finance", name = "East finance", business_unit = "sales-east", roles = new[] { "finance" } });
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);

        var himself = await robot.SendAsync(HttpMethod.Post, $"admin/api/teams/east-finance/members/{robotId}", null);
        var escalation = await robot.SendAsync(HttpMethod.Post, $"admin/api/teams/east-finance/members/{target}", null);
        var replace = await robot.SendAsync(HttpMethod.Put, "admin/api/teams/east-finance/members", new { members = new[] { target } });

        Assert.Equal(HttpStatusCode.Forbidden, himself.Status);
        Assert.Contains("their own", himself.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, escalation.Status);
        Assert.Contains("cannot grant", escalation.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, replace.Status);
        Assert.Empty(Model.Current.Teams[Model.Current.TeamIndex("east-finance")].Members);
    }

    [Fact]
    public async Task The_openapi_document_describes_the_users_search_and_the_team_operations()
    {
        using var http = host.CreateClient();
        var document = JsonDocument.Parse(await http.GetStringAsync(new Uri("admin/api/openapi/admin.json", UriKind.Relative), Cancel)).RootElement;
        var paths = document.GetProperty("paths").EnumerateObject().ToDictionary(p => p.Name.TrimEnd('/'), p => p.Value, StringComparer.Ordinal);

        var list = paths["/admin/api/users"].GetProperty("get");
        Assert.Contains("X-Total-Count", list.GetProperty("summary").GetString(), StringComparison.Ordinal);
        Assert.Equal(["kind", "limit", "offset", "order", "q", "sort", "status"], list.GetProperty("parameters").EnumerateArray().Select(p => p.GetProperty("name").GetString()).Order());
        Assert.True(paths["/admin/api/users/{id}/manager"].TryGetProperty("put", out _));
        Assert.True(paths["/admin/api/teams/{id}"].TryGetProperty("get", out _));
        Assert.True(paths["/admin/api/teams/{id}"].TryGetProperty("put", out _));
        Assert.True(paths["/admin/api/teams/{id}"].TryGetProperty("delete", out _));
        Assert.True(paths["/admin/api/teams/{id}/members"].TryGetProperty("put", out _));
        Assert.True(paths["/admin/api/teams/{id}/members/{userId}"].TryGetProperty("post", out _));
        Assert.True(paths["/admin/api/teams/{id}/members/{userId}"].TryGetProperty("delete", out _));
    }

    [Fact]
    public async Task The_documented_users_and_teams_commands_search_page_build_a_team_and_set_a_manager()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var (exit, output) = await IdentityAdminDocsCommandTests.RunAsync(IdentityAdminDocsCommandTests.Block("<!-- users-teams-commands:", "sh"), host.Issuer, admin.Token);

        Assert.True(exit == 0, output);
        Assert.StartsWith("alice Alice Sales\nbob Bob Manager\ncarol Carol Auditor\ndave Dave Security\ned Ed East\n", output, StringComparison.Ordinal);
        Assert.Contains("x-total-count: 9", output, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("offset=5>; rel=\"next\"", output, StringComparison.Ordinal);
        Assert.Contains("{\"name\":\"East renewals and upsell\",\"members\":1,\"roles\":[\"sales_rep\"]}", output, StringComparison.Ordinal);
        Assert.Contains("manager of ed is bob: true", output, StringComparison.Ordinal);
        var audit = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == "east-renewals").OrderBy(e => e.Sequence).Select(e => e.Action).ToListAsync(Cancel));
        Assert.Equal(["team.create", "team.update", "team.members", "team.members"], audit);
    }

    private static async Task<string> CreateUserAsync(AdminApi admin, string name, string unit, string? displayName = null)
    {
        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/users", new { user_name = name, display_name = displayName ?? name, email = name + "@test.example", business_unit = unit });
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        return created.Json.GetProperty("id").GetString()!;
    }

    /// <summary>One page of GET /admin/api/users (a query string, or a Link target), with its total and links.</summary>
    private async Task<Listing> ListAsync(AdminApi admin, string query)
    {
        using var http = host.CreateClient();
        var path = query.StartsWith('/') ? query.TrimStart('/') : "admin/api/users?" + query;
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin.Token);
        using var response = await http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        var links = response.Headers.TryGetValues("Link", out var values) ? string.Join(", ", values) : "";
        string? Link(string rel) => links.Split(", ").Where(l => l.EndsWith($"rel=\"{rel}\"", StringComparison.Ordinal)).Select(l => l[1..l.IndexOf('>', StringComparison.Ordinal)]).SingleOrDefault();
        var users = JsonDocument.Parse(text).RootElement.EnumerateArray().Select(u => u.Clone()).ToList();
        return new Listing(users, int.Parse(response.Headers.GetValues("X-Total-Count").Single(), System.Globalization.CultureInfo.InvariantCulture), Link("next"), Link("prev"));
    }

    private sealed record Listing(List<JsonElement> Users, int Total, string? Next, string? Previous)
    {
        public List<string> Names => [.. Users.Select(u => u.GetProperty("user_name").GetString()!)];
    }
}
