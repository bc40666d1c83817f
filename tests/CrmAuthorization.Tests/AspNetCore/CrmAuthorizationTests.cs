using System.Net;
using System.Text.Json;
using CrmSecurity.CrmAuthorization.Tests.Support;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.CrmAuthorization.Tests.AspNetCore;

/// <summary>AddCrmAuthorization in a small CRM app, against the real CRM security host over loopback.</summary>
public sealed class CrmAuthorizationTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private static readonly Dictionary<string, string> Passwords = new(StringComparer.Ordinal)
    {
        ["alice"] = AlicePassword,
        ["bob"] = "Bob-Manages-The-Team-42",
        ["erin"] = "Erin-Solves-Cases-42",
        ["grace"] = "Grace-Runs-Campaigns-42",
        ["frank"] = "Frank-Counts-Money-42",
        ["ed"] = "Ed-Sells-In-The-East-42",
    };

    private string Id(string userName) => host.Services.GetRequiredService<AuthorizationModel>().Current.Users.Single(u => u.UserName == userName).Id;

    private Contact[] Contacts() =>
    [
        new("c-1", "Jane", "Doe", "jane.doe@example.com", "+44 20 7946 0958", "1980-02-03", "AB123456C", Id("bob"), "sales-west", 7),
        new("c-2", "John", "Roe", "john.roe@example.com", "+44 20 7946 0001", "1975-11-30", "ZX987654A", Id("alice"), "sales-west", 3),
    ];

    private async Task<string> SignInAsync(string userName, string scope = "openid crm.api")
    {
        using var browser = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var code = CodeFrom(await AuthorizeAsync(browser, AuthorizeParameters(challenge, scope: scope), userName, Passwords[userName]));
        var (status, tokens) = await RedeemAsync(browser, code, verifier);
        Assert.True(status == HttpStatusCode.OK, $"code redemption failed: {status} {tokens}");
        return tokens.GetProperty(scope.Contains("crm.api", StringComparison.Ordinal) ? "access_token" : "id_token").GetString()!;
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(new Uri(path, UriKind.Relative), Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task A_sales_rep_reads_a_contact_with_secret_and_undeclared_fields_removed()
    {
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts());
        using var http = crm.CreateClient(await SignInAsync("alice"));

        var (status, contact) = await GetAsync(http, "contacts/c-1");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Jane", contact.GetProperty("firstName").GetString());
        Assert.Equal("jane.doe@example.com", contact.GetProperty("email").GetString()); // sales_contact_details grants update
        Assert.Equal("c-1", contact.GetProperty("id").GetString());
        Assert.False(contact.TryGetProperty("nationalId", out _)); // secret, no profile grants it
        Assert.False(contact.TryGetProperty("birthDate", out _));
        Assert.False(contact.TryGetProperty("internalScore", out _)); // not a field of the model: deny by default
    }

    [Fact]
    public async Task Marketing_sees_contact_details_masked_in_each_item_of_a_list()
    {
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts());
        using var http = crm.CreateClient(await SignInAsync("grace"));

        var (status, contacts) = await GetAsync(http, "contacts");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, contacts.GetArrayLength());
        Assert.Equal("j•••@example.com", contacts[0].GetProperty("email").GetString());
        Assert.Equal("••••0958", contacts[0].GetProperty("phone").GetString());
        Assert.Equal("j•••@example.com", contacts[1].GetProperty("email").GetString());
        Assert.Equal("••••0001", contacts[1].GetProperty("phone").GetString());
    }

    [Fact]
    public async Task Support_reads_email_unmasked_and_the_birth_date_masked()
    {
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts());
        using var http = crm.CreateClient(await SignInAsync("erin"));

        var (status, contact) = await GetAsync(http, "contacts/c-1");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("jane.doe@example.com", contact.GetProperty("email").GetString());
        Assert.Equal("••••••", contact.GetProperty("birthDate").GetString());
    }

    [Fact]
    public async Task A_user_without_the_privilege_is_refused_with_403()
    {
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts());
        using var http = crm.CreateClient(await SignInAsync("alice"));

        var (status, _) = await GetAsync(http, "invoices");

        Assert.Equal(HttpStatusCode.Forbidden, status);
    }

    [Fact]
    public async Task No_token_is_401_and_a_clients_own_token_or_an_id_token_gets_nothing()
    {
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts());
        using var anonymous = crm.CreateClient(null);
        using var tokenHttp = host.CreateClient();
        using var client = crm.CreateClient((await ClientCredentialsAsync(tokenHttp, "crm.api")).GetProperty("access_token").GetString());
        using var idToken = crm.CreateClient(await SignInAsync("alice", "openid"));

        Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync(anonymous, "contacts/c-1")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(client, "contacts/c-1")).Status); // sub = client_id: no user, no CRM permissions
        Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync(idToken, "contacts/c-1")).Status); // RFC 9068: only at+jwt
    }

    [Fact]
    public async Task Masking_without_a_user_shows_nothing_of_the_record()
    {
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts());
        using var anonymous = crm.CreateClient(null);

        using var response = await anonymous.GetAsync(new Uri("unguarded/contacts/c-1", UriKind.Relative), Cancel);
        var body = await response.Content.ReadAsStringAsync(Cancel);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.DoesNotContain("jane", body, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_record_check_in_a_handler_allows_the_owner_and_denies_outside_the_depth()
    {
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts());
        using var http = crm.CreateClient(await SignInAsync("alice"));

        using var own = await http.PutAsync(new Uri("contacts/c-2", UriKind.Relative), null, Cancel);
        using var other = await http.PutAsync(new Uri("contacts/c-1", UriKind.Relative), null, Cancel);

        Assert.Equal(HttpStatusCode.NoContent, own.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        var decision = JsonDocument.Parse(await other.Content.ReadAsStringAsync(Cancel)).RootElement;
        Assert.Equal("outside_depth", decision.GetProperty("basis").GetString());
    }

    [Fact]
    public async Task The_profile_is_cached_per_perm_ver_and_a_token_with_a_newer_one_fetches_at_once()
    {
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts(), o => o.ProfileRevalidation = TimeSpan.FromHours(1));
        var decisions = crm.Services.GetRequiredService<CrmDecisions>();
        using var before = crm.CreateClient(await SignInAsync("ed"));
        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(before, "invoices")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(before, "contacts/c-1")).Status);
        Assert.Equal(1, decisions.Fetches); // the second request was decided on the cached profile

        await GrantRoleAsync(Id("ed"), "finance");
        using var after = crm.CreateClient(await SignInAsync("ed"));

        Assert.Equal(HttpStatusCode.OK, (await GetAsync(after, "invoices")).Status);
        Assert.Equal(2, decisions.Fetches);
    }

    [Fact]
    public async Task A_revalidation_interval_of_zero_sees_a_model_change_even_with_the_old_token()
    {
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts(), o => o.ProfileRevalidation = TimeSpan.Zero);
        using var http = crm.CreateClient(await SignInAsync("frank"));
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(http, "invoices")).Status);

        await RemoveRoleAsync(Id("frank"), "finance");

        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(http, "invoices")).Status);
    }

    [Fact]
    public async Task Missing_client_credentials_stop_the_app_at_start_naming_the_setting()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddCrmAuthorization(o => o.Issuer = new Uri("http://127.0.0.1:1/"));
        await using var app = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(Cancel));

        Assert.Contains(error.Failures, f => f.Contains("CrmAuthorization:ClientId", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("CrmAuthorization:Issuer", StringComparison.Ordinal) && f.Contains("https", StringComparison.Ordinal));
    }

    private Task GrantRoleAsync(string userId, string roleId) => ChangeAsync(store => store.CrmUserRoles.Add(new UserRoleRecord { UserId = userId, RoleId = roleId }), userId, roleId);

    private Task RemoveRoleAsync(string userId, string roleId) =>
        ChangeAsync(store => store.CrmUserRoles.Remove(store.CrmUserRoles.Single(r => r.UserId == userId && r.RoleId == roleId)), userId, roleId);

    private async Task ChangeAsync(Action<IdentityStore> change, string userId, string roleId)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
        var refused = await scope.ServiceProvider.GetRequiredService<ModelChanges>().ApplyAsync(AdminActor.System("test"), context =>
        {
            change(store);
            context.Audit(new AuditChange("user.roles", "user", userId, userId, null, new { role = roleId }));
            return Task.FromResult<AdminProblem?>(null);
        }, Cancel);
        Assert.Null(refused);
    }
}
