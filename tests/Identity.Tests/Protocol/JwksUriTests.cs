using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>
/// The host with clients whose keys are published at a jwks_uri, served by an in-process Kestrel on loopback, and clients
/// whose jwks_uri points inside the service's network (cloud metadata, a private address).
/// </summary>
public sealed class JwksUriHost : IdentityHost
{
    public const string Client = "uri-es";
    public const string Rotating = "uri-rotating";
    public const string Flooded = "uri-flooded";
    public const string Oversized = "uri-oversized";
    public const string Metadata = "uri-metadata";
    public const string Private = "uri-private";

    /// <summary>The refetch interval for unknown key ids configured for this host.</summary>
    public static readonly TimeSpan RefetchInterval = TimeSpan.FromSeconds(2);

    public JwksUriHost()
    {
        Server.Publish("/client.json", Key.Jwks());
        Server.Publish("/rotating.json", RotatingKey.Jwks());
        Server.Publish("/flooded.json", FloodedKey.Jwks());
        // Longer than the 4 KiB this host accepts, a valid key set apart from its padding.
        var padded = JsonNode.Parse(Key.Jwks())!.AsObject();
        padded["padding"] = new string('x', 8 * 1024);
        Server.Publish("/oversized.json", padded.ToJsonString());
    }

    public JwksServer Server { get; } = new();

    public ClientKeyPair Key { get; } = ClientKeyPair.Ec("key-1");

    public ClientKeyPair RotatingKey { get; } = ClientKeyPair.Ec("rotating-1");

    public ClientKeyPair FloodedKey { get; } = ClientKeyPair.Rsa("flooded-1");

    public string TokenEndpoint => new Uri(BaseAddress, "connect/token").AbsoluteUri;

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = new Dictionary<string, string?>
            {
                ["Identity:ClientJwks:AllowLoopbackHttp"] = "true",
                ["Identity:ClientJwks:UnknownKeyRefetchInterval"] = RefetchInterval.ToString(),
                ["Identity:ClientJwks:MaxResponseBytes"] = "4096",
                ["Identity:ClientJwks:Timeout"] = "00:00:03",
            };
            var clients = new[]
            {
                (Client, Server.Url("/client.json")),
                (Rotating, Server.Url("/rotating.json")),
                (Flooded, Server.Url("/flooded.json")),
                (Oversized, Server.Url("/oversized.json")),
                (Metadata, "https://169.254.169.254/latest/meta-data/jwks"),
                (Private, "https://10.0.0.1/jwks.json"),
            };
            foreach (var ((clientId, uri), index) in clients.Select((c, i) => (c, i)))
            {
                settings[$"Identity:Clients:{index}:ClientId"] = clientId;
                settings[$"Identity:Clients:{index}:JwksUri"] = uri;
                settings[$"Identity:Clients:{index}:GrantTypes:0"] = "client_credentials";
                settings[$"Identity:Clients:{index}:Scopes:0"] = "crm.api";
                settings[$"Identity:Clients:{index}:Tenants:0"] = "demo";
            }

            return settings;
        }
    }
}

/// <summary>
/// private_key_jwt with keys fetched from the client's jwks_uri (RFC 7591 §2, OpenID Connect Core §9, §10.1.1), through the
/// real host: the published key works, any other key is refused, a rotated key is picked up on its unknown kid without
/// letting made-up kids hammer the URI, replay is still refused, and URIs inside the service's network are never fetched.
/// </summary>
public sealed class JwksUriTests(JwksUriHost host) : IClassFixture<JwksUriHost>
{
    [Fact]
    public async Task Client_credentials_signed_with_the_key_published_at_the_jwks_uri_get_a_token()
    {
        using var http = host.CreateClient();

        var (status, body) = await TokenAsync(http, host.Key.Sign(ClientKeyPair.Claims(JwksUriHost.Client, host.TokenEndpoint)));

        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
        Assert.Equal(JwksUriHost.Client, Payload(body.GetProperty("access_token").GetString()!).GetProperty("client_id").GetString());
    }

    [Fact]
    public async Task An_assertion_signed_by_a_key_not_in_the_published_JWKS_is_refused()
    {
        using var http = host.CreateClient();
        // Same kid as the published key, and a kid the JWKS does not have.
        using var sameKid = ClientKeyPair.Ec(host.Key.KeyId);
        using var otherKid = ClientKeyPair.Ec("attacker-1");

        var (sameStatus, sameBody) = await TokenAsync(http, sameKid.Sign(ClientKeyPair.Claims(JwksUriHost.Client, host.TokenEndpoint)));
        var (otherStatus, otherBody) = await TokenAsync(http, otherKid.Sign(ClientKeyPair.Claims(JwksUriHost.Client, host.TokenEndpoint)));
        // Another client's published key does not speak for this one.
        var (crossStatus, crossBody) = await TokenAsync(http, host.FloodedKey.Sign(ClientKeyPair.Claims(JwksUriHost.Client, host.TokenEndpoint)));

        AssertRefused(sameStatus, sameBody);
        AssertRefused(otherStatus, otherBody);
        AssertRefused(crossStatus, crossBody);
    }

    [Fact]
    public async Task A_key_rotated_at_the_uri_is_picked_up_when_an_assertion_names_its_new_kid()
    {
        using var http = host.CreateClient();
        var (firstStatus, firstBody) = await TokenAsync(http, host.RotatingKey.Sign(ClientKeyPair.Claims(JwksUriHost.Rotating, host.TokenEndpoint)));
        Assert.True(firstStatus == HttpStatusCode.OK, $"{firstStatus} {firstBody}");
        using var next = ClientKeyPair.Ec("rotating-2");
        // The client publishes its new key and drops the old one; the service's copy is cached for an hour (max-age).
        host.Server.Publish("/rotating.json", next.Jwks());
        await Task.Delay(JwksUriHost.RefetchInterval + TimeSpan.FromMilliseconds(200), Cancel);

        var (newStatus, newBody) = await TokenAsync(http, next.Sign(ClientKeyPair.Claims(JwksUriHost.Rotating, host.TokenEndpoint)));
        var (oldStatus, oldBody) = await TokenAsync(http, host.RotatingKey.Sign(ClientKeyPair.Claims(JwksUriHost.Rotating, host.TokenEndpoint)));

        Assert.True(newStatus == HttpStatusCode.OK, $"{newStatus} {newBody}");
        // The old key left the published set, so it no longer speaks for the client.
        AssertRefused(oldStatus, oldBody);
    }

    [Fact]
    public async Task Assertions_with_made_up_key_ids_do_not_make_the_service_hammer_the_uri()
    {
        using var http = host.CreateClient();
        var (status, body) = await TokenAsync(http, host.FloodedKey.Sign(ClientKeyPair.Claims(JwksUriHost.Flooded, host.TokenEndpoint)));
        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
        var before = host.Server.Hits("/flooded.json");

        for (var i = 0; i < 25; i++)
        {
            using var attacker = ClientKeyPair.Ec($"made-up-{i}");
            var (floodStatus, floodBody) = await TokenAsync(http, attacker.Sign(ClientKeyPair.Claims(JwksUriHost.Flooded, host.TokenEndpoint)));
            AssertRefused(floodStatus, floodBody);
        }

        // At most one refetch per refetch interval (2 s), however many unknown kids arrive.
        var refetches = host.Server.Hits("/flooded.json") - before;
        Assert.InRange(refetches, 0, 2);
    }

    [Fact]
    public async Task A_replayed_assertion_of_a_jwks_uri_client_is_refused()
    {
        using var http = host.CreateClient();
        var assertion = host.Key.Sign(ClientKeyPair.Claims(JwksUriHost.Client, host.TokenEndpoint));

        var (firstStatus, firstBody) = await TokenAsync(http, assertion);
        var (replayStatus, replayBody) = await TokenAsync(http, assertion);

        Assert.True(firstStatus == HttpStatusCode.OK, $"{firstStatus} {firstBody}");
        AssertRefused(replayStatus, replayBody);
    }

    [Fact]
    public async Task A_JWKS_longer_than_the_size_limit_is_refused()
    {
        using var http = host.CreateClient();

        var (status, body) = await TokenAsync(http, host.Key.Sign(ClientKeyPair.Claims(JwksUriHost.Oversized, host.TokenEndpoint)));

        AssertRefused(status, body);
        Assert.True(host.Server.Hits("/oversized.json") >= 1);
    }

    [Theory]
    [InlineData(JwksUriHost.Metadata)]
    [InlineData(JwksUriHost.Private)]
    public async Task A_jwks_uri_inside_the_service_network_is_never_fetched_and_the_client_is_refused(string client)
    {
        // SSRF (OWASP): a client registered with the cloud metadata address or a private address makes the service connect
        // nowhere; the guard refuses the address before any connection, so this answers at once, not after a timeout.
        using var http = host.CreateClient();
        using var key = ClientKeyPair.Ec();
        var fetcher = host.Services.GetRequiredService<CrmSecurity.Identity.Clients.ClientJwksFetcher>();
        var refusedBefore = fetcher.RefusedConnections;
        var started = DateTimeOffset.UtcNow;

        var (status, body) = await TokenAsync(http, key.Sign(ClientKeyPair.Claims(client, host.TokenEndpoint)));

        AssertRefused(status, body);
        Assert.True(DateTimeOffset.UtcNow - started < TimeSpan.FromSeconds(3), "the request waited for a connection the guard should have refused");
        // The refusal came from the guard, not from the network happening to be unreachable from this machine.
        Assert.True(fetcher.RefusedConnections > refusedBefore, "the SSRF guard did not refuse the connection");
    }

    private static Task<(HttpStatusCode Status, JsonElement Body)> TokenAsync(HttpClient http, string assertion) =>
        PostFormAsync(http, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["scope"] = "crm.api",
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = assertion,
        });

    /// <summary>RFC 7523 §3.2: a client that fails to authenticate gets invalid_client, and no token.</summary>
    private static void AssertRefused(HttpStatusCode status, JsonElement body)
    {
        Assert.True(status is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized, $"{status} {body}");
        Assert.False(body.ValueKind == JsonValueKind.Object && body.TryGetProperty("access_token", out _), body.ToString());
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
    }
}
