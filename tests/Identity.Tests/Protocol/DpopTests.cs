using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>The host with a client that must use DPoP (RFC 9449 §5.2) beside the demo clients.</summary>
public sealed class DpopHost : IdentityHost
{
    public const string RequiredClient = "dpop-required";
    public const string RequiredSecret = "dpop-required-secret";
    public const string PublicClient = "dpop-public";
    public const string PublicRedirect = "http://127.0.0.1:5084/callback";

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Clients:0:ClientId"] = RequiredClient,
        ["Identity:Clients:0:ClientSecret"] = RequiredSecret,
        ["Identity:Clients:0:GrantTypes:0"] = "client_credentials",
        ["Identity:Clients:0:Scopes:0"] = "authz.decide",
        ["Identity:Clients:0:RequireDpop"] = "true",
        // A first-party public client (no consent page): its refresh tokens are bound to its key (RFC 9449 §5).
        ["Identity:Clients:1:ClientId"] = PublicClient,
        ["Identity:Clients:1:GrantTypes:0"] = "authorization_code",
        ["Identity:Clients:1:GrantTypes:1"] = "refresh_token",
        ["Identity:Clients:1:Scopes:0"] = "openid",
        ["Identity:Clients:1:Scopes:1"] = "offline_access",
        ["Identity:Clients:1:Scopes:2"] = "crm.api",
        ["Identity:Clients:1:RedirectUris:0"] = PublicRedirect,
        ["Identity:Clients:1:Tenants:0"] = "demo",
    };
}

/// <summary>
/// DPoP (RFC 9449) through the real host: a client with a P-256 key made here gets DPoP-bound tokens (client credentials,
/// authorization code, refresh) and uses them at the decision and admin APIs with proofs; every way of using the token
/// without the key, or with a bad proof, is refused.
/// </summary>
public sealed class DpopTests(DpopHost host) : IClassFixture<DpopHost>
{
    private string Url(string path) => new Uri(host.BaseAddress, path).AbsoluteUri;

    private string TokenEndpoint => Url("connect/token");

    private string CheckEndpoint => Url("authz/v1/check");

    /// <summary>A token request with a DPoP header (or none).</summary>
    internal static async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseHeaders Headers)> TokenAsync(
        HttpClient http, Dictionary<string, string> form, string? proof, (string Id, string Secret)? basic = null, bool publicClient = false)
    {
        basic ??= publicClient ? null : (CrmClient, CrmSecret);
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token") { Content = new FormUrlEncodedContent(form) };
        if (basic is { } credentials)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{credentials.Id}:{credentials.Secret}")));
        }

        if (proof is not null)
        {
            request.Headers.Add("DPoP", proof);
        }

        using var response = await http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response.Headers);
    }

    private static Dictionary<string, string> ClientCredentials(string scope = "authz.decide") => new() { ["grant_type"] = "client_credentials", ["scope"] = scope };

    private async Task<string> DpopTokenAsync(HttpClient http, DpopKey key, string scope = "authz.decide", (string, string)? client = null)
    {
        var (status, body, _) = await TokenAsync(http, ClientCredentials(scope), key.Proof("POST", TokenEndpoint), client ?? (CrmClient, CrmSecret));
        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
        return body.GetProperty("access_token").GetString()!;
    }

    private object CheckBody() => new
    {
        user_id = host.Services.GetRequiredService<AuthorizationModel>().Current.Users.Single(u => u.UserName == "alice").Id,
        entity = "contact",
        action = "read",
        record = new { id = "c-1", business_unit = "sales-west" },
    };

    private async Task<HttpResponseMessage> CheckAsync(HttpClient http, string scheme, string token, string? proof)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "authz/v1/check") { Content = JsonContent.Create(CheckBody()) };
        request.Headers.Authorization = new AuthenticationHeaderValue(scheme, token);
        if (proof is not null)
        {
            request.Headers.Add("DPoP", proof);
        }

        return await http.SendAsync(request, Cancel);
    }

    private static string Challenge(HttpResponseMessage response) => string.Join(" | ", response.Headers.WwwAuthenticate.Select(h => h.ToString()));

    [Fact]
    public async Task Discovery_lists_the_algorithms_accepted_in_proofs()
    {
        using var http = host.CreateClient();
        var discovery = JsonDocument.Parse(await http.GetStringAsync(new Uri(".well-known/openid-configuration", UriKind.Relative), Cancel)).RootElement;

        var algs = discovery.GetProperty("dpop_signing_alg_values_supported").EnumerateArray().Select(a => a.GetString()).ToList();
        Assert.Contains("ES256", algs);
        Assert.DoesNotContain("HS256", algs);
        Assert.DoesNotContain("none", algs);
    }

    [Fact]
    public async Task Client_credentials_with_a_proof_get_a_DPoP_bound_token_the_decision_API_accepts_with_a_proof()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var (status, body, _) = await TokenAsync(http, ClientCredentials(), key.Proof("POST", TokenEndpoint));

        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
        Assert.Equal("DPoP", body.GetProperty("token_type").GetString());
        var token = body.GetProperty("access_token").GetString()!;
        Assert.Equal(key.Thumbprint, Payload(token).GetProperty("cnf").GetProperty("jkt").GetString());

        using var response = await CheckAsync(http, "DPoP", token, key.Proof("POST", CheckEndpoint, token));
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode} {Challenge(response)}");
    }

    [Fact]
    public async Task A_request_without_a_proof_still_gets_a_bearer_token_without_cnf()
    {
        using var http = host.CreateClient();
        var (status, body, _) = await TokenAsync(http, ClientCredentials(), proof: null);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Bearer", body.GetProperty("token_type").GetString());
        Assert.False(Payload(body.GetProperty("access_token").GetString()!).TryGetProperty("cnf", out _));
    }

    [Fact]
    public async Task A_stolen_DPoP_bound_token_presented_as_bearer_is_refused()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var token = await DpopTokenAsync(http, key);

        using var response = await CheckAsync(http, "Bearer", token, proof: null);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("Bearer error=\"invalid_token\"", Challenge(response), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stolen_token_with_a_proof_signed_by_another_key_is_refused()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        using var attacker = new DpopKey();
        var token = await DpopTokenAsync(http, key);

        using var response = await CheckAsync(http, "DPoP", token, attacker.Proof("POST", CheckEndpoint, token));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("DPoP error=\"invalid_dpop_proof\"", Challenge(response), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stolen_token_without_any_proof_is_refused()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var token = await DpopTokenAsync(http, key);

        using var response = await CheckAsync(http, "DPoP", token, proof: null);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("DPoP error=\"invalid_dpop_proof\"", Challenge(response), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_replayed_proof_is_refused()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var token = await DpopTokenAsync(http, key);
        var proof = key.Proof("POST", CheckEndpoint, token);

        using var first = await CheckAsync(http, "DPoP", token, proof);
        using var replay = await CheckAsync(http, "DPoP", token, proof);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, replay.StatusCode);
        Assert.Contains("already used", Challenge(replay), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET", "authz/v1/check")]
    [InlineData("POST", "authz/v1/explain")]
    [InlineData("POST", "http://attacker.example/authz/v1/check")]
    public async Task A_proof_for_another_method_or_URI_is_refused(string method, string path)
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var token = await DpopTokenAsync(http, key);

        using var response = await CheckAsync(http, "DPoP", token, key.Proof(method, path.StartsWith("http", StringComparison.Ordinal) ? path : Url(path), token));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("invalid_dpop_proof", Challenge(response), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_htu_is_compared_without_query_and_after_normalisation()
    {
        // RFC 9449 §4.3 item 9: query and fragment are ignored; RFC 3986 §6.2.2/§6.2.3 normalisation (case of scheme and host).
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var token = await DpopTokenAsync(http, key);
        var htu = CheckEndpoint.Replace("http://", "HTTP://", StringComparison.Ordinal) + "?unused=1#fragment";

        using var response = await CheckAsync(http, "DPoP", token, key.Proof("POST", htu, token));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_proof_without_ath_or_with_the_hash_of_another_token_is_refused()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var token = await DpopTokenAsync(http, key);
        var other = await DpopTokenAsync(http, key);

        using var missing = await CheckAsync(http, "DPoP", token, key.Proof("POST", CheckEndpoint, token, includeAth: false));
        using var wrong = await CheckAsync(http, "DPoP", token, key.Proof("POST", CheckEndpoint, other));

        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Contains("ath", Challenge(missing), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bearer_token_sent_with_the_DPoP_scheme_is_refused()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var bearer = (await ClientCredentialsAsync(http, "authz.decide")).GetProperty("access_token").GetString()!;

        using var response = await CheckAsync(http, "DPoP", bearer, key.Proof("POST", CheckEndpoint, bearer));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Without_a_token_the_challenge_offers_both_schemes()
    {
        using var http = host.CreateClient();
        using var response = await http.PostAsJsonAsync("authz/v1/check", CheckBody(), Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = Challenge(response);
        Assert.Contains("Bearer", challenge, StringComparison.Ordinal);
        Assert.Contains("DPoP algs=\"ES256", challenge, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_admin_API_accepts_a_DPoP_bound_token_with_a_proof_and_refuses_it_as_bearer()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var token = await DpopTokenAsync(http, key, "identity.admin", ("demo-secops", "demo-secops-secret"));
        var path = "identity/admin/clients/no-such-client/revoke";

        using var withProof = new HttpRequestMessage(HttpMethod.Post, path);
        withProof.Headers.Authorization = new AuthenticationHeaderValue("DPoP", token);
        withProof.Headers.Add("DPoP", key.Proof("POST", Url(path), token));
        using var accepted = await http.SendAsync(withProof, Cancel);
        using var asBearer = new HttpRequestMessage(HttpMethod.Post, path);
        asBearer.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var refused = await http.SendAsync(asBearer, Cancel);

        // Authenticated and authorized: the answer is about the client that does not exist, not about the caller.
        Assert.NotEqual(HttpStatusCode.Unauthorized, accepted.StatusCode);
        Assert.NotEqual(HttpStatusCode.Forbidden, accepted.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
    }

    [Theory]
    [InlineData("typ")]
    [InlineData("private key")]
    [InlineData("old iat")]
    [InlineData("wrong htu")]
    [InlineData("bad signature")]
    public async Task The_token_endpoint_refuses_a_bad_proof_with_invalid_dpop_proof(string defect)
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var proof = defect switch
        {
            "typ" => key.Proof("POST", TokenEndpoint, type: "JWT"),
            "private key" => key.Proof("POST", TokenEndpoint, jwk: new Dictionary<string, string>(key.Jwk) { ["d"] = "AAAA" }),
            "old iat" => key.Proof("POST", TokenEndpoint, issuedAt: DateTimeOffset.UtcNow.AddMinutes(-10)),
            "wrong htu" => key.Proof("POST", Url("connect/introspect")),
            _ => key.Proof("POST", TokenEndpoint)[..^4] + "AAAA",
        };

        var (status, body, _) = await TokenAsync(http, ClientCredentials(), proof);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_dpop_proof", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task The_token_endpoint_refuses_a_replayed_proof()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var proof = key.Proof("POST", TokenEndpoint);

        var (first, _, _) = await TokenAsync(http, ClientCredentials(), proof);
        var (second, body, _) = await TokenAsync(http, ClientCredentials(), proof);

        Assert.Equal(HttpStatusCode.OK, first);
        Assert.Equal(HttpStatusCode.BadRequest, second);
        Assert.Equal("invalid_dpop_proof", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_client_that_requires_DPoP_gets_no_bearer_token()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var credentials = (DpopHost.RequiredClient, DpopHost.RequiredSecret);

        var (refused, body, _) = await TokenAsync(http, ClientCredentials(), proof: null, credentials);
        var (accepted, bound, _) = await TokenAsync(http, ClientCredentials(), key.Proof("POST", TokenEndpoint), credentials);

        Assert.Equal(HttpStatusCode.BadRequest, refused);
        Assert.Equal("invalid_dpop_proof", body.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.OK, accepted);
        Assert.Equal("DPoP", bound.GetProperty("token_type").GetString());
    }

    [Fact]
    public async Task A_public_clients_code_and_refresh_tokens_are_bound_to_its_key()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        using var thief = new DpopKey();
        var (verifier, challenge) = Pkce();
        var location = await AuthorizeAsync(http, AuthorizeParameters(challenge, DpopHost.PublicClient, DpopHost.PublicRedirect, "openid offline_access crm.api"));
        var (status, tokens, _) = await TokenAsync(http, new()
        {
            ["grant_type"] = "authorization_code",
            ["code"] = CodeFrom(location),
            ["redirect_uri"] = DpopHost.PublicRedirect,
            ["code_verifier"] = verifier,
            ["client_id"] = DpopHost.PublicClient,
        }, key.Proof("POST", TokenEndpoint), publicClient: true);
        Assert.True(status == HttpStatusCode.OK, $"{status} {tokens}");
        Assert.Equal("DPoP", tokens.GetProperty("token_type").GetString());
        Assert.Equal(key.Thumbprint, Payload(tokens.GetProperty("access_token").GetString()!).GetProperty("cnf").GetProperty("jkt").GetString());
        var refresh = new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = tokens.GetProperty("refresh_token").GetString()!, ["client_id"] = DpopHost.PublicClient };

        // RFC 9449 §5: the stolen refresh token is useless without the key: no proof, or another key's proof, is refused.
        var (withoutProof, noProofBody, _) = await TokenAsync(http, refresh, proof: null, publicClient: true);
        var (otherKey, otherKeyBody, _) = await TokenAsync(http, refresh, thief.Proof("POST", TokenEndpoint), publicClient: true);
        var (sameKey, refreshed, _) = await TokenAsync(http, refresh, key.Proof("POST", TokenEndpoint), publicClient: true);

        Assert.Equal(HttpStatusCode.BadRequest, withoutProof);
        Assert.Equal("invalid_dpop_proof", noProofBody.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, otherKey);
        Assert.Equal("invalid_dpop_proof", otherKeyBody.GetProperty("error").GetString());
        Assert.True(sameKey == HttpStatusCode.OK, $"{sameKey} {refreshed}");
        Assert.Equal("DPoP", refreshed.GetProperty("token_type").GetString());
        Assert.Equal(key.Thumbprint, Payload(refreshed.GetProperty("access_token").GetString()!).GetProperty("cnf").GetProperty("jkt").GetString());
        Assert.False(Payload(refreshed.GetProperty("access_token").GetString()!).TryGetProperty("crm_dpop_jkt", out _));
    }

    [Fact]
    public async Task A_confidential_clients_code_flow_and_refresh_give_DPoP_bound_tokens_the_decision_API_accepts()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();
        var (verifier, challenge) = Pkce();
        var location = await AuthorizeAsync(http, AuthorizeParameters(challenge, scope: "openid offline_access authz.decide"));
        var (status, tokens, _) = await TokenAsync(http, new()
        {
            ["grant_type"] = "authorization_code",
            ["code"] = CodeFrom(location),
            ["redirect_uri"] = CrmRedirect,
            ["code_verifier"] = verifier,
        }, key.Proof("POST", TokenEndpoint));
        Assert.True(status == HttpStatusCode.OK, $"{status} {tokens}");

        var (refreshStatus, refreshed, _) = await TokenAsync(http, new()
        {
            ["grant_type"] = "refresh_token",
            ["refresh_token"] = tokens.GetProperty("refresh_token").GetString()!,
        }, key.Proof("POST", TokenEndpoint));
        Assert.True(refreshStatus == HttpStatusCode.OK, $"{refreshStatus} {refreshed}");
        Assert.Equal("DPoP", refreshed.GetProperty("token_type").GetString());
        var token = refreshed.GetProperty("access_token").GetString()!;

        using var response = await CheckAsync(http, "DPoP", token, key.Proof("POST", CheckEndpoint, token));
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode} {Challenge(response)}");

        // The userinfo endpoint (OpenIddict's own) applies the same rules: DPoP with a proof, never as bearer.
        using var userInfo = new HttpRequestMessage(HttpMethod.Get, "connect/userinfo");
        userInfo.Headers.Authorization = new AuthenticationHeaderValue("DPoP", token);
        userInfo.Headers.Add("DPoP", key.Proof("GET", Url("connect/userinfo"), token));
        using var claims = await http.SendAsync(userInfo, Cancel);
        using var stolen = new HttpRequestMessage(HttpMethod.Get, "connect/userinfo");
        stolen.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var refused = await http.SendAsync(stolen, Cancel);
        Assert.True(claims.StatusCode == HttpStatusCode.OK, $"{claims.StatusCode} {Challenge(claims)}");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

        // The client itself may still introspect and revoke its bound token (RFC 7662, RFC 7009).
        Assert.True(await IsActiveAsync(http, token));
        var (revoked, _) = await RevokeAsync(http, token);
        Assert.Equal(HttpStatusCode.OK, revoked);
        Assert.False(await IsActiveAsync(http, token));
    }
}

/// <summary>The host with <c>Identity:Dpop:RequireNonce</c> on (RFC 9449 §8).</summary>
public sealed class DpopNonceHost : IdentityHost
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Identity:Dpop:RequireNonce"] = "true" };
}

/// <summary>Server-provided nonces at the token endpoint (RFC 9449 §8) through the real host.</summary>
public sealed class DpopNonceTests(DpopNonceHost host) : IClassFixture<DpopNonceHost>
{
    private string TokenEndpoint => new Uri(host.BaseAddress, "connect/token").AbsoluteUri;

    private static Dictionary<string, string> ClientCredentials() => new() { ["grant_type"] = "client_credentials", ["scope"] = "authz.decide" };

    [Fact]
    public async Task A_proof_without_the_servers_nonce_gets_use_dpop_nonce_and_a_nonce_that_then_works()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();

        var (first, error, headers) = await DpopTests.TokenAsync(http, ClientCredentials(), key.Proof("POST", TokenEndpoint));
        Assert.Equal(HttpStatusCode.BadRequest, first);
        Assert.Equal("use_dpop_nonce", error.GetProperty("error").GetString());
        var nonce = Assert.Single(headers.GetValues("DPoP-Nonce"));

        var (second, tokens, again) = await DpopTests.TokenAsync(http, ClientCredentials(), key.Proof("POST", TokenEndpoint, nonce: nonce));
        Assert.True(second == HttpStatusCode.OK, $"{second} {tokens}");
        Assert.Equal("DPoP", tokens.GetProperty("token_type").GetString());
        Assert.Single(again.GetValues("DPoP-Nonce"));
    }

    [Fact]
    public async Task A_nonce_the_server_did_not_issue_is_refused()
    {
        using var http = host.CreateClient();
        using var key = new DpopKey();

        var (status, error, _) = await DpopTests.TokenAsync(http, ClientCredentials(), key.Proof("POST", TokenEndpoint, nonce: "made-up-nonce"));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("use_dpop_nonce", error.GetProperty("error").GetString());
    }
}
