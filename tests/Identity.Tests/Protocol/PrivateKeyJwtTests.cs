using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>The host with two key-only clients registered in configuration: one ES256, one RS256.</summary>
public sealed class PrivateKeyJwtHost : IdentityHost
{
    public const string EcClient = "pkjwt-es";
    public const string RsClient = "pkjwt-rs";
    public const string Redirect = "http://localhost:5083/signin-oidc";

    public ClientKeyPair EcKey { get; } = ClientKeyPair.Ec();

    public ClientKeyPair RsKey { get; } = ClientKeyPair.Rsa();

    public string TokenEndpoint => new Uri(BaseAddress, "connect/token").AbsoluteUri;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        [$"Identity:Clients:0:ClientId"] = EcClient,
        [$"Identity:Clients:0:Jwks"] = EcKey.Jwks(),
        [$"Identity:Clients:0:GrantTypes:0"] = "client_credentials",
        [$"Identity:Clients:0:GrantTypes:1"] = "authorization_code",
        [$"Identity:Clients:0:Scopes:0"] = "openid",
        [$"Identity:Clients:0:Scopes:1"] = "crm.api",
        [$"Identity:Clients:0:RedirectUris:0"] = Redirect,
        [$"Identity:Clients:0:Tenants:0"] = "demo",
        [$"Identity:Clients:1:ClientId"] = RsClient,
        [$"Identity:Clients:1:Jwks"] = RsKey.Jwks(),
        [$"Identity:Clients:1:GrantTypes:0"] = "client_credentials",
        [$"Identity:Clients:1:GrantTypes:1"] = "authorization_code",
        [$"Identity:Clients:1:Scopes:0"] = "openid",
        [$"Identity:Clients:1:Scopes:1"] = "crm.api",
        [$"Identity:Clients:1:RedirectUris:0"] = Redirect,
        [$"Identity:Clients:1:Tenants:0"] = "demo",
    };
}

/// <summary>
/// private_key_jwt client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9) through the real host: the
/// client's own signed assertions get tokens; each attack on an assertion is refused with invalid_client.
/// </summary>
public sealed class PrivateKeyJwtTests(PrivateKeyJwtHost host) : IClassFixture<PrivateKeyJwtHost>
{
    private const string EcClient = PrivateKeyJwtHost.EcClient;
    private const string RsClient = PrivateKeyJwtHost.RsClient;

    [Fact]
    public async Task Discovery_advertises_private_key_jwt_at_the_token_endpoint()
    {
        using var http = host.CreateClient();
        var discovery = JsonDocument.Parse(await http.GetStringAsync(new Uri(".well-known/openid-configuration", UriKind.Relative), Cancel)).RootElement;

        var methods = discovery.GetProperty("token_endpoint_auth_methods_supported").EnumerateArray().Select(m => m.GetString()).ToList();
        Assert.Contains("private_key_jwt", methods);
    }

    [Theory]
    [InlineData(EcClient)]
    [InlineData(RsClient)]
    public async Task Client_credentials_authenticated_with_a_signed_assertion_get_a_token(string client)
    {
        using var http = host.CreateClient();
        var (status, body) = await TokenAsync(http, ClientCredentials(), Sign(client, ClientKeyPair.Claims(client, host.TokenEndpoint)));

        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
        var payload = Payload(body.GetProperty("access_token").GetString()!);
        Assert.Equal(client, payload.GetProperty("client_id").GetString());
        Assert.Equal(client, payload.GetProperty("sub").GetString());
    }

    [Theory]
    [InlineData(EcClient)]
    [InlineData(RsClient)]
    public async Task An_authorization_code_is_redeemed_with_a_signed_assertion(string client)
    {
        using var http = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var location = await AuthorizeAsync(http, AuthorizeParameters(challenge, client, PrivateKeyJwtHost.Redirect, "openid crm.api"));
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["code"] = CodeFrom(location),
            ["redirect_uri"] = PrivateKeyJwtHost.Redirect,
            ["code_verifier"] = verifier,
            ["client_id"] = client,
        };

        var (status, body) = await TokenAsync(http, form, Sign(client, ClientKeyPair.Claims(client, host.TokenEndpoint)));

        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
        Assert.Equal(client, Payload(body.GetProperty("id_token").GetString()!).GetProperty("aud").GetString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("client-authentication+jwt")]
    public async Task An_assertion_without_typ_or_with_the_explicit_client_authentication_type_is_accepted(string? type)
    {
        // RFC 7523 §2.2 asks for no typ; draft-ietf-oauth-rfc7523bis §4 defines client-authentication+jwt.
        using var http = host.CreateClient();
        var (status, body) = await TokenAsync(http, ClientCredentials(), host.EcKey.Sign(ClientKeyPair.Claims(EcClient, host.TokenEndpoint), type));

        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
    }

    [Theory]
    [InlineData("at+jwt")]
    [InlineData("dpop+jwt")]
    [InlineData("oauth-authz-req+jwt")]
    public async Task A_JWT_of_another_explicit_type_is_not_taken_as_a_client_assertion(string type)
    {
        // A token the client signed for another purpose is no proof of its identity here (RFC 8725 §3.11).
        using var http = host.CreateClient();
        var (status, body) = await TokenAsync(http, ClientCredentials(), host.EcKey.Sign(ClientKeyPair.Claims(EcClient, host.TokenEndpoint), type));

        AssertRefused(status, body);
    }

    [Fact]
    public async Task The_issuer_identifier_is_accepted_as_the_audience()
    {
        // RFC 7523 §3 item 3 with the 2025 clarification (draft-ietf-oauth-rfc7523bis): the issuer identifier is the audience.
        using var http = host.CreateClient();
        var (status, body) = await TokenAsync(http, ClientCredentials(), Sign(EcClient, ClientKeyPair.Claims(EcClient, host.Issuer)));

        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
    }

    [Fact]
    public async Task An_assertion_signed_by_a_key_not_registered_for_the_client_is_refused()
    {
        using var http = host.CreateClient();
        using var attacker = ClientKeyPair.Ec(host.EcKey.KeyId);
        // The other client's registered key does not speak for this client either.
        var (status, body) = await TokenAsync(http, ClientCredentials(), attacker.Sign(ClientKeyPair.Claims(EcClient, host.TokenEndpoint)));
        var (otherStatus, otherBody) = await TokenAsync(http, ClientCredentials(), host.RsKey.Sign(ClientKeyPair.Claims(EcClient, host.TokenEndpoint)));

        AssertRefused(status, body);
        AssertRefused(otherStatus, otherBody);
    }

    [Fact]
    public async Task An_assertion_whose_iss_or_sub_is_not_the_client_is_refused()
    {
        using var http = host.CreateClient();
        var wrongSub = ClientKeyPair.Claims(EcClient, host.TokenEndpoint);
        wrongSub["sub"] = "demo-crm";
        var wrongIss = ClientKeyPair.Claims(EcClient, host.TokenEndpoint);
        wrongIss["iss"] = "demo-crm";
        // The request names one client, the (validly signed) assertion another.
        var form = ClientCredentials();
        form["client_id"] = RsClient;

        var (subStatus, subBody) = await TokenAsync(http, ClientCredentials(), Sign(EcClient, wrongSub));
        var (issStatus, issBody) = await TokenAsync(http, ClientCredentials(), Sign(EcClient, wrongIss));
        var (idStatus, idBody) = await TokenAsync(http, form, Sign(EcClient, ClientKeyPair.Claims(EcClient, host.TokenEndpoint)));

        AssertRefused(subStatus, subBody);
        AssertRefused(issStatus, issBody);
        AssertRefused(idStatus, idBody);
    }

    [Theory]
    [InlineData("https://login.other.example.com/connect/token")]
    [InlineData("https://login.other.example.com/")]
    [InlineData("connect/revoke")]
    [InlineData("")]
    public async Task An_assertion_for_another_audience_is_refused(string audience)
    {
        // Another server's token endpoint or issuer, or another endpoint of this server (RFC 7523 §3 item 3).
        using var http = host.CreateClient();
        var claims = ClientKeyPair.Claims(EcClient, audience.StartsWith("https:", StringComparison.Ordinal) || audience.Length == 0 ? audience : new Uri(host.BaseAddress, audience).AbsoluteUri);

        var (status, body) = await TokenAsync(http, ClientCredentials(), Sign(EcClient, claims));

        AssertRefused(status, body);
    }

    [Fact]
    public async Task An_expired_assertion_or_one_without_exp_is_refused()
    {
        using var http = host.CreateClient();
        var expired = ClientKeyPair.Claims(EcClient, host.TokenEndpoint);
        expired["iat"] = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeSeconds();
        expired["exp"] = DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds();
        var endless = ClientKeyPair.Claims(EcClient, host.TokenEndpoint);
        endless.Remove("exp");
        var tooLong = ClientKeyPair.Claims(EcClient, host.TokenEndpoint, TimeSpan.FromDays(30));

        var (expiredStatus, expiredBody) = await TokenAsync(http, ClientCredentials(), Sign(EcClient, expired));
        var (endlessStatus, endlessBody) = await TokenAsync(http, ClientCredentials(), Sign(EcClient, endless));
        var (longStatus, longBody) = await TokenAsync(http, ClientCredentials(), Sign(EcClient, tooLong));

        AssertRefused(expiredStatus, expiredBody);
        AssertRefused(endlessStatus, endlessBody);
        AssertRefused(longStatus, longBody);
    }

    [Fact]
    public async Task An_unsigned_assertion_and_one_signed_with_HS256_keyed_by_the_public_key_are_refused()
    {
        using var http = host.CreateClient();
        var claims = ClientKeyPair.Claims(EcClient, host.TokenEndpoint);
        var (noneStatus, noneBody) = await TokenAsync(http, ClientCredentials(), ClientKeyPair.WithAlgorithmNone(claims));
        var (pemStatus, pemBody) = await TokenAsync(http, ClientCredentials(), host.EcKey.SignHs256(ClientKeyPair.Claims(EcClient, host.TokenEndpoint), host.EcKey.PublicPem()));
        var (jwkStatus, jwkBody) = await TokenAsync(http, ClientCredentials(), host.EcKey.SignHs256(ClientKeyPair.Claims(EcClient, host.TokenEndpoint), host.EcKey.Jwks()));

        AssertRefused(noneStatus, noneBody);
        AssertRefused(pemStatus, pemBody);
        AssertRefused(jwkStatus, jwkBody);
    }

    [Fact]
    public async Task A_replayed_assertion_is_refused_and_one_without_jti_too()
    {
        using var http = host.CreateClient();
        var assertion = Sign(EcClient, ClientKeyPair.Claims(EcClient, host.TokenEndpoint));
        var withoutJti = ClientKeyPair.Claims(EcClient, host.TokenEndpoint);
        withoutJti.Remove("jti");

        var (firstStatus, firstBody) = await TokenAsync(http, ClientCredentials(), assertion);
        var (replayStatus, replayBody) = await TokenAsync(http, ClientCredentials(), assertion);
        var (noJtiStatus, noJtiBody) = await TokenAsync(http, ClientCredentials(), Sign(EcClient, withoutJti));

        Assert.True(firstStatus == HttpStatusCode.OK, $"{firstStatus} {firstBody}");
        AssertRefused(replayStatus, replayBody);
        AssertRefused(noJtiStatus, noJtiBody);
    }

    [Fact]
    public async Task A_key_only_client_presenting_a_client_secret_is_refused()
    {
        using var http = host.CreateClient();
        var (basicStatus, basicBody) = await PostFormAsync(http, "connect/token", ClientCredentials(), (EcClient, "guessed-secret"));
        var form = ClientCredentials();
        form["client_id"] = EcClient;
        form["client_secret"] = "";
        var (emptyStatus, emptyBody) = await PostFormAsync(http, "connect/token", form);
        form.Remove("client_secret");
        var (noneStatus, noneBody) = await PostFormAsync(http, "connect/token", form);

        AssertRefused(basicStatus, basicBody);
        // An empty or absent secret is a request without client authentication (RFC 6749 §5.2 invalid_request or invalid_client).
        AssertRefused(emptyStatus, emptyBody, "invalid_request");
        AssertRefused(noneStatus, noneBody, "invalid_request");
    }

    [Fact]
    public async Task A_refused_assertion_is_written_as_a_denied_access_event_without_the_assertion()
    {
        using var http = host.CreateClient();
        using var attacker = ClientKeyPair.Ec();
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        var assertion = attacker.Sign(ClientKeyPair.Claims(RsClient, host.TokenEndpoint));
        var form = ClientCredentials();
        form["client_id"] = RsClient;
        var (status, body) = await TokenAsync(http, form, assertion);
        AssertRefused(status, body);
        await host.FlushEventsAsync();

        var events = await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking().Where(e => e.ClientId == RsClient).ToListAsync(Cancel));
        var rejected = Assert.Single(events, e => e.Action == "token_rejected" && e.Timestamp >= before);
        Assert.Equal("denied", rejected.Outcome);
        Assert.Contains("client_auth=private_key_jwt", rejected.Details, StringComparison.Ordinal);
        Assert.Contains("error=invalid_client", rejected.Details, StringComparison.Ordinal);
        var everything = string.Join("\n", events.Select(e => $"{e.Details} {e.UserName} {e.UserId}"));
        Assert.DoesNotContain("eyJ", everything, StringComparison.Ordinal);
        Assert.DoesNotContain(assertion.Split('.')[2], everything, StringComparison.Ordinal);
    }

    private string Sign(string client, JsonObject claims) => (client == EcClient ? host.EcKey : host.RsKey).Sign(claims);

    private static Dictionary<string, string> ClientCredentials() => new() { ["grant_type"] = "client_credentials", ["scope"] = "crm.api" };

    private static Task<(HttpStatusCode Status, JsonElement Body)> TokenAsync(HttpClient http, Dictionary<string, string> form, string assertion)
    {
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
        form["client_assertion"] = assertion;
        return PostFormAsync(http, "connect/token", form);
    }

    /// <summary>RFC 7523 §3.2 / RFC 6749 §5.2: a client that fails to authenticate gets invalid_client, and no token.</summary>
    private static void AssertRefused(HttpStatusCode status, JsonElement body, string error = "invalid_client")
    {
        Assert.True(status is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized, $"{status} {body}");
        Assert.False(body.ValueKind == JsonValueKind.Object && body.TryGetProperty("access_token", out _), body.ToString());
        Assert.Equal(error, body.GetProperty("error").GetString());
    }
}
