using System.Net;
using CrmSecurity.Security.Tests.Support;
using Microsoft.AspNetCore.WebUtilities;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>
/// Red-team finding 4, Identity side: any end user could inject analyzer events about anyone, because demo-crm's users
/// could ask for <c>events:write</c> in the sign-in flow. The scope is client-only (<c>ClientCredentialsOnly</c>): no user
/// obtains it through the authorization code flow, a pushed request, a refresh or a token exchange; each refusal is
/// <c>invalid_scope</c> naming the scope. The client itself still gets it with client credentials.
/// </summary>
public sealed class ClientOnlyScopeTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    private const string TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
    private const string AccessTokenType = "urn:ietf:params:oauth:token-type:access_token";

    [Fact]
    public async Task Alice_asking_for_events_write_in_the_sign_in_flow_gets_invalid_scope_and_no_code()
    {
        using var http = host.CreateClient();
        var parameters = AuthorizeParameters(Pkce().Challenge, scope: "openid crm.api events:write");

        var redirect = await AuthorizeAsync(http, parameters, "alice", Personas.Passwords["alice"]);

        Assert.StartsWith(CrmRedirect, redirect.AbsoluteUri, StringComparison.Ordinal);
        var query = QueryHelpers.ParseQuery(redirect.Query);
        Assert.Equal("invalid_scope", query["error"].ToString());
        Assert.Contains("events:write", query["error_description"].ToString(), StringComparison.Ordinal);
        Assert.False(query.ContainsKey("code"));
    }

    [Fact]
    public async Task A_pushed_authorization_request_for_events_write_is_refused()
    {
        using var http = host.CreateClient();
        var (status, body) = await PostFormAsync(http, "connect/par",
            AuthorizeParameters(Pkce().Challenge, scope: "openid events:write"), (CrmClient, CrmSecret));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_scope", body.GetProperty("error").GetString());
        Assert.Contains("events:write", body.GetProperty("error_description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Neither_a_refresh_nor_a_token_exchange_turns_alices_sign_in_into_an_events_write_token()
    {
        using var http = host.CreateClient();
        var tokens = await Personas.SignInAsync(host, "alice", "openid offline_access crm.api");

        var (refreshStatus, refreshed) = await PostFormAsync(http, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token",
            ["refresh_token"] = tokens.GetProperty("refresh_token").GetString()!,
            ["scope"] = "events:write",
        }, (CrmClient, CrmSecret));
        Assert.Equal(HttpStatusCode.BadRequest, refreshStatus);
        Assert.Equal("invalid_scope", refreshed.GetProperty("error").GetString());

        var (exchangeStatus, exchanged) = await PostFormAsync(http, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = TokenExchange,
            ["subject_token"] = tokens.GetProperty("access_token").GetString()!,
            ["subject_token_type"] = AccessTokenType,
            ["scope"] = "events:write",
        }, (CrmClient, CrmSecret));
        Assert.Equal(HttpStatusCode.BadRequest, exchangeStatus);
        Assert.Equal("invalid_scope", exchanged.GetProperty("error").GetString());
        Assert.Contains("events:write", exchanged.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        Assert.False(exchanged.TryGetProperty("access_token", out _));
    }

    [Fact]
    public async Task The_client_itself_still_gets_events_write_with_client_credentials()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-crm", "events:write");

        var payload = Payload(token);
        Assert.Equal("demo-crm", payload.GetProperty("sub").GetString());
        Assert.Equal("events:write", payload.GetProperty("scope").GetString());
    }
}
