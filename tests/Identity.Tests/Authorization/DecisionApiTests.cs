using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Authorization;

/// <summary>The HTTP decision API through the real host, with demo-crm's client-credentials tokens (scope authz.decide).</summary>
public sealed class DecisionApiTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private string Id(string userName) => host.Services.GetRequiredService<AuthorizationModel>().Current.Users.Single(u => u.UserName == userName).Id;

    private async Task<HttpClient> DecisionClientAsync(string scope = "authz.decide")
    {
        var http = host.CreateClient();
        var token = (await ClientCredentialsAsync(http, scope)).GetProperty("access_token").GetString()!;
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> CheckAsync(HttpClient http, object request)
    {
        using var response = await http.PostAsJsonAsync("authz/v1/check", request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(new Uri(path, UriKind.Relative), Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task A_check_in_the_users_business_unit_is_allowed_with_the_role_and_depth_that_decided()
    {
        using var http = await DecisionClientAsync();

        var (status, body) = await CheckAsync(http, new
        {
            user_id = Id("alice"),
            entity = "contact",
            action = "read",
            record = new { id = "c-1", owner = Id("bob"), business_unit = "sales-west" },
        });

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("allowed").GetBoolean());
        Assert.Equal("privilege", body.GetProperty("basis").GetString());
        Assert.Equal("sales_rep", body.GetProperty("role").GetProperty("id").GetString());
        Assert.Equal("business_unit", body.GetProperty("depth").GetString());
        Assert.Contains("Sales West", body.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_record_outside_the_depth_is_denied_by_default_and_says_why()
    {
        using var http = await DecisionClientAsync();

        var (status, body) = await CheckAsync(http, new
        {
            user_id = Id("alice"),
            entity = "contact",
            action = "update",
            record = new { id = "c-2", owner = Id("bob"), business_unit = "sales-west" },
        });

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(body.GetProperty("allowed").GetBoolean());
        Assert.Equal("outside_depth", body.GetProperty("basis").GetString());
        Assert.Equal("own", body.GetProperty("depth").GetString());
    }

    [Fact]
    public async Task An_entity_without_any_privilege_is_denied()
    {
        using var http = await DecisionClientAsync();

        var (_, body) = await CheckAsync(http, new { user_id = Id("alice"), entity = "invoice", action = "read" });

        Assert.False(body.GetProperty("allowed").GetBoolean());
        Assert.Equal("no_privilege", body.GetProperty("basis").GetString());
    }

    [Fact]
    public async Task Fields_show_hidden_masked_read_and_update_per_the_field_security_profiles()
    {
        using var http = await DecisionClientAsync();

        var (status, alice) = await GetAsync(http, $"authz/v1/users/{Id("alice")}/fields/contact");
        var (_, aliceAccount) = await GetAsync(http, $"authz/v1/users/{Id("alice")}/fields/account");
        var (_, carol) = await GetAsync(http, $"authz/v1/users/{Id("carol")}/fields/contact");
        var (_, grace) = await GetAsync(http, $"authz/v1/users/{Id("grace")}/fields/contact?fields=first_name,email");

        Assert.Equal(HttpStatusCode.OK, status);
        var fields = alice.GetProperty("fields");
        Assert.Equal("update", fields.GetProperty("email").GetProperty("access").GetString()); // sales_contact_details via team
        Assert.Equal("hidden", fields.GetProperty("national_id").GetProperty("access").GetString()); // secret, no profile grants it
        Assert.Equal("hidden", fields.GetProperty("birth_date").GetProperty("access").GetString());
        Assert.Equal("update", fields.GetProperty("first_name").GetProperty("access").GetString()); // public, and she may update (her own) contacts
        Assert.All(carol.GetProperty("fields").EnumerateObject(), f => Assert.Equal("hidden", f.Value.GetProperty("access").GetString())); // no read on contact at all
        Assert.Equal(["first_name", "email"], grace.GetProperty("fields").EnumerateObject().Select(f => f.Name));
        Assert.Equal("masked", grace.GetProperty("fields").GetProperty("email").GetProperty("access").GetString()); // read without read_unmasked
        Assert.Equal("email", grace.GetProperty("fields").GetProperty("email").GetProperty("mask").GetString());
        Assert.Equal("masked", aliceAccount.GetProperty("fields").GetProperty("credit_limit").GetProperty("access").GetString());
    }

    [Fact]
    public async Task A_list_filter_gives_the_business_units_and_owners_for_a_where_clause()
    {
        using var http = await DecisionClientAsync();

        var (status, body) = await GetAsync(http, $"authz/v1/users/{Id("alice")}/filter/contact?action=read");
        var (_, update) = await GetAsync(http, $"authz/v1/users/{Id("alice")}/filter/contact?action=update");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(body.GetProperty("all").GetBoolean());
        Assert.Equal(["sales-west"], body.GetProperty("business_units").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains(Id("alice"), body.GetProperty("owners").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("business_unit_id IN (@unit0)", body.GetProperty("sql_example").GetString(), StringComparison.Ordinal);
        Assert.Equal("own", update.GetProperty("depth").GetString());
        Assert.Empty(update.GetProperty("business_units").EnumerateArray());
    }

    [Fact]
    public async Task A_request_without_a_token_gets_401()
    {
        using var http = host.CreateClient();

        var response = await http.PostAsJsonAsync("authz/v1/check", new { user_id = "x", entity = "contact", action = "read" }, Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        // RFC 6750 §3 and RFC 9449 §7.1: one challenge per scheme the API accepts.
        Assert.Equal(["Bearer", "DPoP"], response.Headers.WwwAuthenticate.Select(h => h.Scheme).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_token_of_ours_without_the_decision_scope_gets_403_insufficient_scope()
    {
        using var http = await DecisionClientAsync(scope: "crm.api");

        var response = await http.PostAsJsonAsync("authz/v1/check", new { user_id = Id("alice"), entity = "contact", action = "read" }, Cancel);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("insufficient_scope", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tampered_token_gets_401()
    {
        using var http = host.CreateClient();
        var token = (await ClientCredentialsAsync(http, "authz.decide")).GetProperty("access_token").GetString()!;
        var parts = token.Split('.');
        var payload = Payload(token).GetRawText().Replace("\"authz.decide\"", "\"authz.decide crm.api\"", StringComparison.Ordinal);
        http.DefaultRequestHeaders.Authorization = new("Bearer", $"{parts[0]}.{Base64Url(System.Text.Encoding.UTF8.GetBytes(payload))}.{parts[2]}");

        var response = await http.PostAsJsonAsync("authz/v1/check", new { user_id = Id("alice"), entity = "contact", action = "read" }, Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task A_revoked_token_gets_401()
    {
        using var http = host.CreateClient();
        var token = (await ClientCredentialsAsync(http, "authz.decide")).GetProperty("access_token").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await RevokeAsync(http, token)).Status);
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);

        var response = await http.PostAsJsonAsync("authz/v1/check", new { user_id = Id("alice"), entity = "contact", action = "read" }, Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Unknown_entity_action_field_and_user_are_problem_details_naming_the_field()
    {
        using var http = await DecisionClientAsync();
        var alice = Id("alice");

        var (entityStatus, entity) = await CheckAsync(http, new { user_id = alice, entity = "spaceship", action = "read" });
        var (actionStatus, action) = await CheckAsync(http, new { user_id = alice, entity = "contact", action = "launch" });
        var (userStatus, user) = await CheckAsync(http, new { user_id = "nobody", entity = "contact", action = "read" });
        var (fieldStatus, field) = await GetAsync(http, $"authz/v1/users/{alice}/fields/contact?fields=email,shoe_size");
        var (kindStatus, kind) = await CheckAsync(http, new { user_id = alice, entity = "contact", action = "read", record = new { owner = alice, shares = new[] { new { principal = "x", kind = "robot", actions = new[] { "read" } } } } });

        Assert.Equal(HttpStatusCode.BadRequest, entityStatus);
        Assert.Contains("spaceship", entity.GetProperty("errors").GetProperty("entity")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, actionStatus);
        Assert.Contains("launch", action.GetProperty("errors").GetProperty("action")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, userStatus);
        Assert.Contains("nobody", user.GetProperty("errors").GetProperty("user_id")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, fieldStatus);
        Assert.Contains("shoe_size", field.GetProperty("errors").GetProperty("fields")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, kindStatus);
        Assert.True(kind.GetProperty("errors").TryGetProperty("record.shares[0].kind", out _));
    }

    [Fact]
    public async Task A_body_with_an_unknown_member_is_refused_naming_it()
    {
        using var http = await DecisionClientAsync();

        var (status, body) = await CheckAsync(http, new { user_id = Id("alice"), entity = "contact", action = "read", recrod = new { } });

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("recrod", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_model_change_gives_a_new_decision_at_once_and_flags_the_old_perm_ver_as_stale()
    {
        using var http = await DecisionClientAsync();
        var ed = Id("ed");
        var before = await CheckAsync(http, new { user_id = ed, entity = "invoice", action = "read" });
        var oldVersion = before.Body.GetProperty("perm_ver").GetInt64();
        Assert.False(before.Body.GetProperty("allowed").GetBoolean());

        await GrantRoleAsync(ed, "finance");
        var after = await CheckAsync(http, new { user_id = ed, entity = "invoice", action = "read", perm_ver = oldVersion });
        var (_, fields) = await GetAsync(http, $"authz/v1/users/{ed}/fields/account?perm_ver={oldVersion}");

        Assert.True(after.Body.GetProperty("allowed").GetBoolean());
        Assert.Equal("finance", after.Body.GetProperty("role").GetProperty("id").GetString());
        Assert.True(after.Body.GetProperty("perm_ver").GetInt64() > oldVersion);
        Assert.True(after.Body.GetProperty("token_stale").GetBoolean());
        Assert.True(fields.GetProperty("token_stale").GetBoolean());
    }

    [Fact]
    public async Task A_perm_ver_ahead_of_the_model_is_refused_rather_than_decided_on_older_data()
    {
        using var http = await DecisionClientAsync();
        var alice = Id("alice");
        var (_, current) = await CheckAsync(http, new { user_id = alice, entity = "contact", action = "read" });

        var (status, body) = await CheckAsync(http, new { user_id = alice, entity = "contact", action = "read", perm_ver = current.GetProperty("perm_ver").GetInt64() + 100 });

        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.True(body.GetProperty("errors").TryGetProperty("perm_ver", out _));
    }

    [Fact]
    public async Task A_users_own_token_may_ask_only_about_that_user()
    {
        var tokens = await SignInAliceAsync(host, "openid authz.decide");
        using var http = host.CreateClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());

        var own = await CheckAsync(http, new { user_id = Id("alice"), entity = "contact", action = "read" });
        var other = await CheckAsync(http, new { user_id = Id("bob"), entity = "contact", action = "read" });

        Assert.Equal(HttpStatusCode.OK, own.Status);
        Assert.False(own.Body.GetProperty("token_stale").GetBoolean());
        Assert.Equal(HttpStatusCode.Forbidden, other.Status);
    }

    [Fact]
    public async Task The_profile_carries_perm_ver_as_etag_and_answers_304_while_it_holds()
    {
        using var http = await DecisionClientAsync();
        var alice = Id("alice");
        using var first = await http.GetAsync(new Uri($"authz/v1/users/{alice}/profile", UriKind.Relative), Cancel);
        var etag = first.Headers.ETag!;

        using var request = new HttpRequestMessage(HttpMethod.Get, $"authz/v1/users/{alice}/profile");
        request.Headers.IfNoneMatch.Add(etag);
        using var second = await http.SendAsync(request, Cancel);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var profile = JsonDocument.Parse(await first.Content.ReadAsStringAsync(Cancel)).RootElement;
        Assert.Equal($"\"{profile.GetProperty("perm_ver").GetInt64()}\"", etag.Tag);
        Assert.Equal("business_unit", profile.GetProperty("entities").GetProperty("contact").GetProperty("privileges").GetProperty("read").GetProperty("depth").GetString());
        Assert.Equal(HttpStatusCode.NotModified, second.StatusCode);
    }

    [Fact]
    public async Task Who_can_access_answers_an_auditor_with_every_path_and_refuses_a_sales_rep()
    {
        using var auditor = await UserClientAsync("carol", "Carol-Reads-The-Logs-42");
        using var rep = await UserClientAsync("alice", AlicePassword);

        var (status, body) = await GetAsync(auditor, "authz/v1/who-can-access/contact/fields/national_id");
        var (entityStatus, entity) = await GetAsync(auditor, "authz/v1/who-can-access/contact?action=export");
        var (refusedStatus, _) = await GetAsync(rep, "authz/v1/who-can-access/contact/fields/national_id");

        Assert.Equal(HttpStatusCode.OK, status);
        var dave = Assert.Single(body.GetProperty("users").EnumerateArray(), u => u.GetProperty("user_name").GetString() == "dave");
        Assert.Contains(dave.GetProperty("paths").EnumerateArray(), p => p.GetProperty("kind").GetString() == "field_profile" && p.GetProperty("profile").GetProperty("id").GetString() == "all_secured_fields");
        Assert.DoesNotContain(body.GetProperty("users").EnumerateArray(), u => u.GetProperty("user_name").GetString() == "alice");
        Assert.Equal(HttpStatusCode.OK, entityStatus);
        Assert.Contains(entity.GetProperty("users").EnumerateArray(), u => u.GetProperty("user_name").GetString() == "dave");
        Assert.Equal(HttpStatusCode.Forbidden, refusedStatus);

        await host.FlushEventsAsync();
        var events = await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking().Where(e => e.Privilege == "who_can_access").ToListAsync(Cancel));
        Assert.Contains(events, e => e.UserId == Id("carol") && e.Outcome == "success");
        Assert.Contains(events, e => e.UserId == Id("alice") && e.Outcome == "denied");
    }

    private async Task<HttpClient> UserClientAsync(string userName, string password)
    {
        using var browser = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var code = CodeFrom(await AuthorizeAsync(browser, AuthorizeParameters(challenge, scope: "openid authz.decide"), userName, password));
        var (status, tokens) = await RedeemAsync(browser, code, verifier);
        Assert.Equal(HttpStatusCode.OK, status);
        var http = host.CreateClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());
        return http;
    }

    private async Task GrantRoleAsync(string userId, string roleId)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var changes = scope.ServiceProvider.GetRequiredService<ModelChanges>();
        var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
        var refused = await changes.ApplyAsync(AdminActor.System("test"), context =>
        {
            store.CrmUserRoles.Add(new UserRoleRecord { UserId = userId, RoleId = roleId });
            context.Audit(new AuditChange("user.roles", "user", userId, userId, null, new { role = roleId }));
            return Task.FromResult<AdminProblem?>(null);
        }, Cancel);
        Assert.Null(refused);
    }
}
