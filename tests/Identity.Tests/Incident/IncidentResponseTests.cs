using System.Net;
using System.Net.Http.Json;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Incident;

public sealed class IncidentResponseTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task One_call_revokes_every_token_and_session_of_a_user()
    {
        var browser = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var code = CodeFrom(await AuthorizeAsync(browser, AuthorizeParameters(challenge), "bob", "Bob-Manages-The-Team-42"));
        var (status, tokens) = await RedeemAsync(browser, code, verifier);
        Assert.True(status == HttpStatusCode.OK, $"code redemption failed: {status} {tokens}");
        var second = await SignInBobElsewhereAsync();
        using var http = host.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(new Uri("account", UriKind.Relative), Cancel)).StatusCode);

        var response = await AdminPostAsync(http, $"identity/admin/users/{Subject(tokens)}/revoke", await AdminTokenAsync(http));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(await IsActiveAsync(http, tokens.GetProperty("access_token").GetString()!));
        Assert.False(await IsActiveAsync(http, second.GetProperty("access_token").GetString()!));
        Assert.Equal(HttpStatusCode.BadRequest, (await RefreshAsync(http, tokens.GetProperty("refresh_token").GetString()!)).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await RefreshAsync(http, second.GetProperty("refresh_token").GetString()!)).Status);
        Assert.Equal(HttpStatusCode.Redirect, (await browser.GetAsync(new Uri("account", UriKind.Relative), Cancel)).StatusCode); // cookie session ended
    }

    [Fact]
    public async Task Disabling_a_user_revokes_everything_and_refuses_new_sign_ins()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAsync("carol", "Carol-Reads-The-Logs-42");

        var response = await AdminPostAsync(http, $"identity/admin/users/{Subject(tokens)}/disable", await AdminTokenAsync(http));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(await IsActiveAsync(http, tokens.GetProperty("access_token").GetString()!));
        Assert.Equal(HttpStatusCode.BadRequest, (await RefreshAsync(http, tokens.GetProperty("refresh_token").GetString()!)).Status);
        using var browser = host.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await SubmitLoginAsync(browser, "/account", "carol", "Carol-Reads-The-Logs-42")).StatusCode); // the form again, not a redirect

        await host.FlushEventsAsync();
        var events = await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking().Where(e => e.TargetUser == Subject(tokens)).ToListAsync(Cancel));
        // Incident calls are model changes now: the actor is the client's application user, the privilege the audit action.
        Assert.Contains(events, e => e.Action == "admin_change" && e.Privilege == "user.disable" && e.ClientId == "demo-secops" && e.UserName == "demo-secops-app");
    }

    [Fact]
    public async Task Revoking_a_client_invalidates_its_client_credentials_tokens()
    {
        // A client of its own: a cut-off on demo-crm would also refuse the tokens other tests of this class
        // get from demo-crm within the same second (cut-offs reach one second past the revocation).
        await RegisterClientAsync("incident-crm", "incident-crm-secret");
        using var http = host.CreateClient();
        var before = (await ClientCredentialsAsync(http, client: "incident-crm", secret: "incident-crm-secret")).GetProperty("access_token").GetString()!;
        Assert.True(await IsActiveForAsync(http, before, "incident-crm", "incident-crm-secret"));

        var response = await AdminPostAsync(http, "identity/admin/clients/incident-crm/revoke", await AdminTokenAsync(http));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(await IsActiveForAsync(http, before, "incident-crm", "incident-crm-secret"));
    }

    [Fact]
    public async Task The_admin_calls_refuse_missing_foreign_scope_and_revoked_tokens()
    {
        using var http = host.CreateClient();
        var crmToken = (await ClientCredentialsAsync(http)).GetProperty("access_token").GetString()!;
        var admin = await AdminTokenAsync(http);

        Assert.Equal(HttpStatusCode.Unauthorized, (await AdminPostAsync(http, "identity/admin/clients/demo-spa/revoke", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await AdminPostAsync(http, "identity/admin/clients/demo-spa/revoke", crmToken)).StatusCode); // audience crm-api
        await RevokeAsync(http, admin, "demo-secops", "demo-secops-secret");
        Assert.Equal(HttpStatusCode.Unauthorized, (await AdminPostAsync(http, "identity/admin/clients/demo-spa/revoke", admin)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await AdminPostAsync(http, "identity/admin/clients/no-such-client/revoke", await AdminTokenAsync(http))).StatusCode);
    }

    private async Task RegisterClientAsync(string clientId, string secret)
    {
        await using var scope = host.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<CrmSecurity.Identity.Clients.ClientRegistry>().RegisterAsync(
            new CrmSecurity.Identity.ClientSettings
            {
                ClientId = clientId,
                ClientSecret = secret,
                GrantTypes = ["client_credentials"],
                Scopes = ["crm.api"],
            },
            Cancel);
    }

    // Introspection by the token's own client: OpenIddict only answers audiences and presenters of a token.
    private static async Task<bool> IsActiveForAsync(HttpClient http, string token, string client, string secret)
    {
        var (status, body) = await IntrospectAsync(http, token, client, secret);
        Assert.Equal(HttpStatusCode.OK, status);
        return body.GetProperty("active").GetBoolean();
    }

    private static async Task<string> AdminTokenAsync(HttpClient http) =>
        (await ClientCredentialsAsync(http, "identity.admin", "demo-secops", "demo-secops-secret")).GetProperty("access_token").GetString()!;

    private static async Task<HttpResponseMessage> AdminPostAsync(HttpClient http, string path, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(new { reason = "test incident" }) };
        if (token is not null)
        {
            request.Headers.Authorization = new("Bearer", token);
        }

        return await http.SendAsync(request, Cancel);
    }

    private static string Subject(System.Text.Json.JsonElement tokens) => Payload(tokens.GetProperty("access_token").GetString()!).GetProperty("sub").GetString()!;

    private Task<System.Text.Json.JsonElement> SignInBobElsewhereAsync() => SignInAsync("bob", "Bob-Manages-The-Team-42");

    private async Task<System.Text.Json.JsonElement> SignInAsync(string user, string password)
    {
        using var http = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var code = CodeFrom(await AuthorizeAsync(http, AuthorizeParameters(challenge), user, password));
        var (status, tokens) = await RedeemAsync(http, code, verifier);
        Assert.True(status == HttpStatusCode.OK, $"code redemption failed: {status} {tokens}");
        return tokens;
    }
}
