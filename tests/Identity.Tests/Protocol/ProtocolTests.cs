using System.Net;
using System.Text.Json;
using CrmSecurity.Identity.Tests.Support;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>Every flow through the real host over HTTP, with its failure paths.</summary>
public sealed class ProtocolTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task Discovery_advertises_code_flow_with_S256_only_and_neither_implicit_nor_password()
    {
        using var http = host.CreateClient();
        var discovery = JsonDocument.Parse(await http.GetStringAsync(new Uri(".well-known/openid-configuration", UriKind.Relative), Cancel)).RootElement;

        Assert.Equal(host.Issuer, discovery.GetProperty("issuer").GetString());
        Assert.Equal(["S256"], discovery.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["code"], discovery.GetProperty("response_types_supported").EnumerateArray().Select(e => e.GetString()));
        var grants = discovery.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.DoesNotContain("implicit", grants);
        Assert.DoesNotContain("password", grants);
        Assert.Contains("urn:ietf:params:oauth:grant-type:token-exchange", grants);
        Assert.True(discovery.TryGetProperty("pushed_authorization_request_endpoint", out _));
        foreach (var endpoint in new[] { "jwks_uri", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "introspection_endpoint", "revocation_endpoint", "end_session_endpoint" })
        {
            Assert.StartsWith(host.Issuer, discovery.GetProperty(endpoint).GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Client_credentials_give_an_at_jwt_for_the_requested_audience()
    {
        using var http = host.CreateClient();
        var token = (await ClientCredentialsAsync(http)).GetProperty("access_token").GetString()!;

        Assert.Equal("at+jwt", Header(token).GetProperty("typ").GetString());
        Assert.Equal("ES256", Header(token).GetProperty("alg").GetString());
        var payload = Payload(token);
        Assert.Equal("crm-api", payload.GetProperty("aud").GetString());
        Assert.Equal(CrmClient, payload.GetProperty("sub").GetString());
        Assert.Equal(CrmClient, payload.GetProperty("client_id").GetString());
        Assert.Equal("crm.api", payload.GetProperty("scope").GetString());
        Assert.True(payload.TryGetProperty("jti", out _));
        Assert.True(payload.TryGetProperty("iat", out _));
    }

    [Fact]
    public async Task A_wrong_client_secret_is_rejected_as_invalid_client()
    {
        using var http = host.CreateClient();
        // First a right secret, so the cached digest exists and the wrong one must not match it.
        await ClientCredentialsAsync(http);
        var (status, body) = await PostFormAsync(http, "connect/token",
            new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "crm.api" }, (CrmClient, "demo-crm-secreT"));

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_scope_the_client_is_not_permitted_is_refused()
    {
        using var http = host.CreateClient();
        var (status, body) = await PostFormAsync(http, "connect/token",
            new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "identity.admin" }, (CrmClient, CrmSecret));

        // OpenIddict answers invalid_request for a scope outside the client's permissions.
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_request", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Password_grant_is_not_available()
    {
        using var http = host.CreateClient();
        var (status, body) = await PostFormAsync(http, "connect/token",
            new Dictionary<string, string> { ["grant_type"] = "password", ["username"] = "alice", ["password"] = AlicePassword }, (CrmClient, CrmSecret));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("unsupported_grant_type", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Implicit_response_type_is_refused()
    {
        using var http = host.CreateClient();
        var (_, challenge) = Pkce();
        var parameters = AuthorizeParameters(challenge);
        parameters["response_type"] = "token";
        var response = await http.GetAsync(new Uri(AuthorizeUrl(parameters), UriKind.Relative), Cancel);

        // Refused before any redirect: the error is shown by the server, never sent to the client's URI.
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
        Assert.Contains("unsupported_response_type", await response.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Code_flow_with_PKCE_gives_id_access_and_refresh_tokens_with_the_claims_contract()
    {
        var tokens = await SignInAliceAsync(host);

        var access = Payload(tokens.GetProperty("access_token").GetString()!);
        Assert.Equal("alice", access.GetProperty("preferred_username").GetString());
        Assert.Equal("Alice Sales", access.GetProperty("name").GetString());
        Assert.Equal("alice@demo.example", access.GetProperty("email").GetString());
        Assert.Equal("sales_rep", access.GetProperty("role").GetString());
        Assert.Equal("demo", access.GetProperty("tenant").GetString());
        Assert.Equal("sales-west", access.GetProperty("business_unit").GetString());
        Assert.Equal(JsonValueKind.Number, access.GetProperty("perm_ver").ValueKind);
        Assert.Equal("crm-api", access.GetProperty("aud").GetString());

        var idToken = tokens.GetProperty("id_token").GetString()!;
        Assert.Equal("RS256", Header(idToken).GetProperty("alg").GetString());
        var id = Payload(idToken);
        Assert.Equal(CrmClient, id.GetProperty("aud").GetString());
        Assert.Equal(access.GetProperty("sub").GetString(), id.GetProperty("sub").GetString());
        Assert.True(id.TryGetProperty("nonce", out _));
        Assert.Equal(["pwd"], id.GetProperty("amr").EnumerateArray().Select(e => e.GetString()));
        Assert.True(tokens.TryGetProperty("refresh_token", out _));
    }

    [Fact]
    public async Task A_wrong_PKCE_verifier_is_rejected()
    {
        using var http = host.CreateClient();
        var (_, challenge) = Pkce();
        var redirect = await AuthorizeAsync(http, AuthorizeParameters(challenge));
        var (status, body) = await RedeemAsync(http, CodeFrom(redirect), Pkce().Verifier);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task An_authorization_request_without_PKCE_is_refused()
    {
        using var http = host.CreateClient();
        var parameters = AuthorizeParameters("unused");
        parameters.Remove("code_challenge");
        parameters.Remove("code_challenge_method");
        var response = await http.GetAsync(new Uri(AuthorizeUrl(parameters), UriKind.Relative), Cancel);

        // Refused before any redirect: the error is shown by the server, never sent to the client's URI.
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
        Assert.Contains("invalid_request", await response.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_plain_code_challenge_method_is_refused()
    {
        using var http = host.CreateClient();
        var parameters = AuthorizeParameters("a-plain-challenge-that-is-long-enough-to-be-valid-43chars");
        parameters["code_challenge_method"] = "plain";
        var response = await http.GetAsync(new Uri(AuthorizeUrl(parameters), UriKind.Relative), Cancel);

        // Refused before any redirect: the error is shown by the server, never sent to the client's URI.
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
        Assert.Contains("invalid_request", await response.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_reused_code_is_rejected_and_revokes_the_tokens_issued_from_it()
    {
        using var http = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var code = CodeFrom(await AuthorizeAsync(http, AuthorizeParameters(challenge)));
        var (first, tokens) = await RedeemAsync(http, code, verifier);
        Assert.Equal(HttpStatusCode.OK, first);

        var (second, error) = await RedeemAsync(http, code, verifier);

        Assert.Equal(HttpStatusCode.BadRequest, second);
        Assert.Equal("invalid_grant", error.GetProperty("error").GetString());
        // RFC 6749 §4.1.2: the tokens issued from a replayed code should be revoked.
        Assert.False(await IsActiveAsync(http, tokens.GetProperty("refresh_token").GetString()!));
        Assert.False(await IsActiveAsync(http, tokens.GetProperty("access_token").GetString()!));
    }

    [Fact]
    public async Task An_unregistered_redirect_uri_gets_an_error_page_not_a_redirect()
    {
        using var http = host.CreateClient();
        var parameters = AuthorizeParameters(Pkce().Challenge, redirect: "http://localhost:5081/signin-oidc/../evil");
        var response = await http.GetAsync(new Uri(AuthorizeUrl(parameters), UriKind.Relative), Cancel);

        // RFC 6749 §4.1.2.1: never redirect to an unverified URI.
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
    }

    [Fact]
    public async Task A_redirect_uri_that_differs_at_the_token_endpoint_is_rejected()
    {
        using var http = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var code = CodeFrom(await AuthorizeAsync(http, AuthorizeParameters(challenge)));
        var (status, body) = await RedeemAsync(http, code, verifier, redirect: "http://127.0.0.1:5081/signin-oidc");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Refresh_tokens_rotate_and_reuse_of_a_spent_one_revokes_the_whole_chain()
    {
        using var http = host.CreateClient();
        var first = await SignInAliceAsync(host);
        var spent = first.GetProperty("refresh_token").GetString()!;

        var (status, second) = await RefreshAsync(http, spent);
        Assert.Equal(HttpStatusCode.OK, status);
        var current = second.GetProperty("refresh_token").GetString()!;
        Assert.NotEqual(spent, current);

        var (replay, error) = await RefreshAsync(http, spent);

        Assert.Equal(HttpStatusCode.BadRequest, replay);
        Assert.Equal("invalid_grant", error.GetProperty("error").GetString());
        // RFC 9700 §4.14.2: the legitimate client's newest tokens die with the replayed one.
        Assert.False(await IsActiveAsync(http, current));
        Assert.False(await IsActiveAsync(http, second.GetProperty("access_token").GetString()!));
        var (afterReplay, _) = await RefreshAsync(http, current);
        Assert.Equal(HttpStatusCode.BadRequest, afterReplay);
    }

    [Fact]
    public async Task A_revoked_client_credentials_token_is_inactive_in_introspection()
    {
        using var http = host.CreateClient();
        var token = (await ClientCredentialsAsync(http)).GetProperty("access_token").GetString()!;
        Assert.True(await IsActiveAsync(http, token));

        var (status, _) = await RevokeAsync(http, token);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(await IsActiveAsync(http, token));
    }

    [Fact]
    public async Task A_revoked_user_access_token_is_inactive_in_introspection()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAliceAsync(host);
        var access = tokens.GetProperty("access_token").GetString()!;
        Assert.True(await IsActiveAsync(http, access));

        await RevokeAsync(http, access);

        Assert.False(await IsActiveAsync(http, access));
    }

    [Fact]
    public async Task Revoking_a_refresh_token_ends_the_grant()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAliceAsync(host);
        await RevokeAsync(http, tokens.GetProperty("refresh_token").GetString()!);

        var (status, body) = await RefreshAsync(http, tokens.GetProperty("refresh_token").GetString()!);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
        Assert.False(await IsActiveAsync(http, tokens.GetProperty("access_token").GetString()!));
    }

    [Fact]
    public async Task Introspection_reports_the_claims_of_an_active_token()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAliceAsync(host);
        var (status, body) = await IntrospectAsync(http, tokens.GetProperty("access_token").GetString()!);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("active").GetBoolean());
        Assert.Equal(host.Issuer, body.GetProperty("iss").GetString());
        Assert.Equal(CrmClient, body.GetProperty("client_id").GetString());
    }

    [Fact]
    public async Task Userinfo_returns_the_claims_the_scopes_allow()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAliceAsync(host, scope: "openid profile crm.api");
        using var request = new HttpRequestMessage(HttpMethod.Get, "connect/userinfo");
        request.Headers.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());
        var response = await http.SendAsync(request, Cancel);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Cancel)).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Alice Sales", body.GetProperty("name").GetString());
        Assert.Equal("demo", body.GetProperty("tenant").GetString());
        Assert.False(body.TryGetProperty("email", out _)); // no email scope
    }

    [Fact]
    public async Task The_id_token_and_userinfo_carry_the_users_zoneinfo_with_the_profile_scope()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAliceAsync(host, scope: "openid profile crm.api");
        using var request = new HttpRequestMessage(HttpMethod.Get, "connect/userinfo");
        request.Headers.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());
        var response = await http.SendAsync(request, Cancel);
        var userinfo = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Cancel)).RootElement;
        var idToken = tokens.GetProperty("id_token").GetString()!.Split('.')[1];
        var claims = JsonDocument.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(idToken)).RootElement;

        // OpenID Connect Core §5.1: zoneinfo is the IANA name; the demo gives Alice the US Pacific zone.
        Assert.Equal("America/Los_Angeles", userinfo.GetProperty("zoneinfo").GetString());
        Assert.Equal("America/Los_Angeles", claims.GetProperty("zoneinfo").GetString());
    }

    [Fact]
    public async Task JwtBearer_accepts_our_access_token_and_rejects_tampered_and_foreign_audience_ones()
    {
        await using var api = await ResourceServer.StartAsync(host.Issuer);
        using var http = host.CreateClient();
        var userToken = (await SignInAliceAsync(host)).GetProperty("access_token").GetString()!;
        var clientToken = (await ClientCredentialsAsync(http)).GetProperty("access_token").GetString()!;
        var reportsToken = (await ClientCredentialsAsync(http, scope: "crm.reports")).GetProperty("access_token").GetString()!;

        var ok = await api.CallAsync(userToken);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var me = JsonDocument.Parse(await ok.Content.ReadAsStringAsync(Cancel)).RootElement;
        Assert.Equal(["sales_rep"], me.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(HttpStatusCode.OK, (await api.CallAsync(clientToken)).StatusCode);

        var parts = userToken.Split('.');
        var tamperedPayload = Base64Url(System.Text.Encoding.UTF8.GetBytes(Payload(userToken).GetRawText().Replace("sales_rep", "security_admin", StringComparison.Ordinal)));
        Assert.Equal(HttpStatusCode.Unauthorized, (await api.CallAsync($"{parts[0]}.{tamperedPayload}.{parts[2]}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await api.CallAsync($"{parts[0]}.{parts[1]}.")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await api.CallAsync(reportsToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await api.CallAsync(null)).StatusCode);
    }
}
