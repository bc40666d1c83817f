using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace CrmSecurity.Identity.Clients;

/// <summary>
/// A client that publishes its public keys at a URL (<c>Identity:Clients:N:JwksUri</c>, RFC 7591 §2 <c>jwks_uri</c>) instead
/// of registering them inline (<c>Jwks</c>). The settings are checked at start; the keys are fetched by
/// <see cref="ClientJwksFetcher"/> when an assertion of the client arrives.
/// </summary>
internal static class ClientJwksUri
{
    /// <summary>The application property holding the client's JWKS URI.</summary>
    public const string Property = "crm_security_jwks_uri";

    /// <summary>True when the client's keys are published at a URI.</summary>
    public static bool HasUri(ClientSettings client) => !string.IsNullOrWhiteSpace(client.JwksUri);

    /// <summary>Checks <see cref="ClientSettings.JwksUri"/>: exactly one of <c>Jwks</c> and <c>JwksUri</c>, an https URL (or loopback http where allowed).</summary>
    public static void Validate(ClientSettings client, string path, ClientJwksSettings settings, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(errors);
        if (!HasUri(client))
        {
            return;
        }

        if (ClientKeys.HasKeys(client))
        {
            // OpenID Connect Dynamic Client Registration §2 / RFC 7591 §2: jwks and jwks_uri MUST NOT both be present;
            // with both, which keys speak for the client would be ambiguous.
            errors.Add($"{path}:JwksUri and {path}:Jwks are both set for client '{client.ClientId}'. Register the keys in exactly one: remove one of the two.");
            return;
        }

        if (RefusalOf(client.JwksUri!, settings.AllowLoopbackHttp) is { } refusal)
        {
            errors.Add($"{path}:JwksUri of client '{client.ClientId}' {refusal}");
        }
    }

    /// <summary>Checks <see cref="ClientJwksSettings"/>: positive bounds, loopback http only outside Production-like environments.</summary>
    public static void ValidateSettings(ClientJwksSettings settings, IHostEnvironment environment, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(errors);
        if (settings.Timeout <= TimeSpan.Zero || settings.Timeout > TimeSpan.FromMinutes(1))
        {
            errors.Add($"Identity:ClientJwks:Timeout '{settings.Timeout}' must be positive and at most a minute, e.g. 00:00:05.");
        }

        if (settings.MaxResponseBytes is < 1024 or > 1024 * 1024)
        {
            errors.Add($"Identity:ClientJwks:MaxResponseBytes '{settings.MaxResponseBytes}' must be between 1024 and 1048576.");
        }

        if (settings.MinCacheDuration <= TimeSpan.Zero || settings.MaxCacheDuration < settings.MinCacheDuration)
        {
            errors.Add("Identity:ClientJwks:MinCacheDuration must be positive and Identity:ClientJwks:MaxCacheDuration at least as long, e.g. 00:05:00 and 1.00:00:00.");
        }

        if (settings.UnknownKeyRefetchInterval <= TimeSpan.Zero)
        {
            errors.Add("Identity:ClientJwks:UnknownKeyRefetchInterval must be positive, e.g. 00:01:00.");
        }

        if (settings.AllowLoopbackHttp && !environment.IsDevelopment() && !environment.IsEnvironment("Testing"))
        {
            // RFC 7591 §2 / OpenID Connect Core §10.1.1: key material is fetched over TLS; plain http is for a developer's own machine.
            errors.Add($"Identity:ClientJwks:AllowLoopbackHttp is true in the {environment.EnvironmentName} environment. It is for Development and Testing only: set it to false and publish client keys over https.");
        }

        foreach (var (network, index) in settings.AllowedNetworks.Select((n, i) => (n, i)))
        {
            if (!IPNetwork.TryParse(network, out _))
            {
                errors.Add($"Identity:ClientJwks:AllowedNetworks:{index} '{network}' is not a network in CIDR notation, e.g. 10.20.0.0/16 or fd12:3456::/48.");
            }
        }
    }

    /// <summary>Why <paramref name="uri"/> cannot be a JWKS URI, or null when it can.</summary>
    public static string? RefusalOf(string uri, bool allowLoopbackHttp)
    {
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Fragment.Length > 0 || parsed.UserInfo.Length > 0)
        {
            return $"'{uri}' must be an absolute URL without user information or fragment, e.g. https://keys.example.com/client-jwks.json.";
        }

        if (parsed.Scheme == Uri.UriSchemeHttps)
        {
            return null;
        }

        if (parsed.Scheme == Uri.UriSchemeHttp && allowLoopbackHttp && IsLoopbackHost(parsed))
        {
            return null;
        }

        // OpenID Connect Core §10.1.1 / RFC 7591 §2: jwks_uri content is trusted key material, so it comes over TLS.
        return $"'{uri}' must use https" + (parsed.Scheme == Uri.UriSchemeHttp && IsLoopbackHost(parsed)
            ? " (http on a loopback host needs Identity:ClientJwks:AllowLoopbackHttp, Development and Testing only)."
            : ".");
    }

    private static bool IsLoopbackHost(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.DnsSafeHost, out var address) && IPAddress.IsLoopback(address));

    /// <summary>
    /// A public key nobody holds the private half of (it is generated and dropped here). OpenIddict requires a confidential
    /// client without a secret to carry a JWKS; a client whose keys live at a URI carries this one, and the key resolver
    /// (<see cref="Protocol.ResolveRemoteClientKeys"/>) replaces it with the fetched keys. Should that resolver ever not run,
    /// nothing verifies against this key, so the client fails closed.
    /// </summary>
    public static JsonWebKeySet UnusableKeySet()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var q = ec.ExportParameters(includePrivateParameters: false).Q;
        var set = new JsonWebKeySet();
        set.Keys.Add(new JsonWebKey
        {
            Kty = JsonWebAlgorithmsKeyTypes.EllipticCurve,
            Crv = JsonWebKeyECTypes.P256,
            X = Base64UrlEncoder.Encode(q.X),
            Y = Base64UrlEncoder.Encode(q.Y),
            Use = JsonWebKeyUseNames.Sig,
            Kid = "jwks_uri",
        });
        return set;
    }
}

/// <summary>
/// The SSRF guard of JWKS fetching: which IP addresses the service may connect to for a client's JWKS. Checked on the
/// addresses DNS returned, at connect time, and the connection goes to the checked address, so a name that resolves
/// differently a moment later (DNS rebinding) cannot slip past (OWASP SSRF Prevention Cheat Sheet, "Application layer").
/// </summary>
internal sealed class JwksAddressGuard(bool allowLoopback, IReadOnlyList<IPNetwork> allowedNetworks)
{
    /// <summary>Networks that are not the public Internet (RFC 6890 special-purpose registries, RFC 6598, RFC 4193, RFC 4291).</summary>
    private static readonly IPNetwork[] Internal =
    [
        IPNetwork.Parse("0.0.0.0/8"), // "this network" (RFC 791); 0.0.0.0 reaches the local host on Linux
        IPNetwork.Parse("10.0.0.0/8"), // private (RFC 1918)
        IPNetwork.Parse("100.64.0.0/10"), // carrier-grade NAT (RFC 6598)
        IPNetwork.Parse("127.0.0.0/8"), // loopback
        IPNetwork.Parse("169.254.0.0/16"), // link-local (RFC 3927), including the cloud metadata service 169.254.169.254
        IPNetwork.Parse("172.16.0.0/12"), // private (RFC 1918)
        IPNetwork.Parse("192.0.0.0/24"), // IETF protocol assignments (RFC 6890)
        IPNetwork.Parse("192.0.2.0/24"), // documentation (RFC 5737)
        IPNetwork.Parse("192.168.0.0/16"), // private (RFC 1918)
        IPNetwork.Parse("198.18.0.0/15"), // benchmarking (RFC 2544)
        IPNetwork.Parse("198.51.100.0/24"), // documentation
        IPNetwork.Parse("203.0.113.0/24"), // documentation
        IPNetwork.Parse("224.0.0.0/4"), // multicast
        IPNetwork.Parse("240.0.0.0/4"), // reserved and broadcast
        IPNetwork.Parse("::/96"), // unspecified, loopback and IPv4-compatible (RFC 4291 §2.5.5.1)
        IPNetwork.Parse("100::/64"), // discard (RFC 6666)
        IPNetwork.Parse("2001:db8::/32"), // documentation (RFC 3849)
        IPNetwork.Parse("fc00::/7"), // unique local (RFC 4193), including AWS's fd00:ec2::254 metadata address
        IPNetwork.Parse("fe80::/10"), // link-local
        IPNetwork.Parse("ff00::/8"), // multicast
    ];

    private static readonly IPNetwork Nat64 = IPNetwork.Parse("64:ff9b::/96"); // RFC 6052: the last 32 bits are an IPv4 address

    /// <summary>
    /// A connection to <paramref name="endpoint"/> for a <c>SocketsHttpHandler.ConnectCallback</c>: the name is resolved
    /// once, every address checked, and the socket connects to exactly those addresses (no second DNS answer, no rebinding).
    /// Throws <see cref="AddressRefusedException"/> when any address is refused. Used for every URL a client registers
    /// (<c>jwks_uri</c>, <c>backchannel_logout_uri</c>).
    /// </summary>
    public async ValueTask<Stream> ConnectAsync(DnsEndPoint endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var addresses = IPAddress.TryParse(endpoint.Host, out var literal)
            ? [literal]
            : await Dns.GetHostAddressesAsync(endpoint.Host, cancellationToken);
        if (addresses.Length == 0 || !addresses.All(Allows))
        {
            // Any internal address in the answer refuses the name: an attacker's DNS could otherwise mix one in.
            throw new AddressRefusedException(endpoint.Host);
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            // The connection goes to the addresses checked above, not to a second DNS answer.
            await socket.ConnectAsync(addresses, endpoint.Port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>True when the service may connect to <paramref name="address"/> for a client's JWKS.</summary>
    public bool Allows(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            // ::ffff:10.0.0.1 is 10.0.0.1 on a dual-stack socket.
            address = address.MapToIPv4();
        }
        else if (Nat64.Contains(address))
        {
            // 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a NAT64 gateway.
            address = new IPAddress(address.GetAddressBytes()[12..]);
        }

        if (allowedNetworks.Any(network => network.Contains(address)))
        {
            return true;
        }

        if (IPAddress.IsLoopback(address))
        {
            return allowLoopback;
        }

        return !Internal.Any(network => network.Contains(address));
    }
}

/// <summary>
/// Fetches and caches clients' JWKS from their <c>jwks_uri</c>. A JWKS is kept as long as its <c>Cache-Control: max-age</c>
/// says, within <see cref="ClientJwksSettings.MinCacheDuration"/> and <see cref="ClientJwksSettings.MaxCacheDuration"/>;
/// an assertion naming an unknown <c>kid</c> fetches it again at most once per
/// <see cref="ClientJwksSettings.UnknownKeyRefetchInterval"/> (OpenID Connect Core §10.1.1: a signer rotates by
/// publishing a new key and the verifier refetches on an unknown <c>kid</c>). One fetch per URI at a time.
/// </summary>
internal sealed partial class ClientJwksFetcher : IDisposable
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly ClientJwksSettings _settings;
    private readonly TimeProvider _time;
    private readonly ILogger<ClientJwksFetcher> _logger;
    private readonly HttpClient _http;

    public ClientJwksFetcher(IOptions<IdentitySettings> settings, TimeProvider time, ILogger<ClientJwksFetcher> logger)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _settings = settings.Value.ClientJwks;
        _time = time;
        _logger = logger;
        var guard = new JwksAddressGuard(_settings.AllowLoopbackHttp, [.. _settings.AllowedNetworks.Select(n => IPNetwork.Parse(n))]);
        var handler = new SocketsHttpHandler
        {
            // A redirect would lead the request to an address the client did not register (and past the scheme check).
            AllowAutoRedirect = false,
            // A proxy would connect on our behalf to an address the guard never saw.
            UseProxy = false,
            UseCookies = false,
            ConnectTimeout = _settings.Timeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectCallback = (context, cancellationToken) => ConnectAsync(guard, context.DnsEndPoint, cancellationToken),
        };
        _http = new HttpClient(handler) { Timeout = _settings.Timeout, MaxResponseContentBufferSize = _settings.MaxResponseBytes };
    }

    /// <summary>How many JWKS requests were sent (metrics and tests of the rate limit).</summary>
    public long Fetches => Interlocked.Read(ref _fetches);

    /// <summary>How many connections the SSRF guard refused (an operator's signal that a client points inside the network).</summary>
    public long RefusedConnections => Interlocked.Read(ref _refusedConnections);

    private long _fetches;

    private long _refusedConnections;

    /// <summary>
    /// The signing keys published at <paramref name="uri"/> for <paramref name="clientId"/>; fetched again first when the
    /// cache has expired, or when <paramref name="keyId"/> is not among them and the last fetch is older than the refetch
    /// interval. Empty when nothing usable could be fetched (the assertion then fails: invalid_client).
    /// </summary>
    public async ValueTask<IReadOnlyList<SecurityKey>> KeysAsync(string clientId, string uri, string? keyId, CancellationToken cancellationToken)
    {
        var entry = _entries.GetOrAdd(uri, _ => new Entry());
        if (!NeedsFetch(entry.State, keyId))
        {
            return entry.State!.Keys;
        }

        await entry.Gate.WaitAsync(cancellationToken);
        try
        {
            // Another request may have fetched while this one waited.
            if (NeedsFetch(entry.State, keyId))
            {
                entry.State = await FetchAsync(clientId, uri, entry.State, cancellationToken);
            }

            return entry.State!.Keys;
        }
        finally
        {
            entry.Gate.Release();
        }
    }

    private bool NeedsFetch(KeySetState? state, string? keyId)
    {
        if (state is null)
        {
            return true;
        }

        var now = _time.GetUtcNow();
        if (now >= state.Expires)
        {
            return true;
        }

        return keyId is not null && !state.KeyIds.Contains(keyId) && now - state.Attempted >= _settings.UnknownKeyRefetchInterval;
    }

    private async Task<KeySetState> FetchAsync(string clientId, string uri, KeySetState? previous, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        Interlocked.Increment(ref _fetches);
        try
        {
            if (ClientJwksUri.RefusalOf(uri, _settings.AllowLoopbackHttp) is { } refusal)
            {
                throw new JwksFetchException($"the URI {refusal}");
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_settings.Timeout);
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/jwk-set+json"));
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new JwksFetchException($"the server answered {(int)response.StatusCode}");
            }

            var text = await ReadBoundedAsync(response.Content, timeout.Token);
            var errors = new List<string>();
            // The fetched set meets the same rules as one in configuration: public RSA/EC signing keys only (RFC 7517 §5).
            ClientKeys.ValidateSet(text, "jwks_uri", clientId, errors);
            if (errors.Count > 0)
            {
                throw new JwksFetchException(string.Join(" ", errors));
            }

            var keys = ClientKeys.Parse(text).GetSigningKeys();
            var lifetime = Lifetime(response.Headers.CacheControl);
            LogFetched(_logger, clientId, keys.Count, lifetime);
            return new KeySetState([.. keys], [.. keys.Select(k => k.KeyId).OfType<string>()], now, now + lifetime, now);
        }
        catch (Exception e) when (e is HttpRequestException or JwksFetchException or OperationCanceledException or IOException && !cancellationToken.IsCancellationRequested)
        {
            LogFetchFailed(_logger, clientId, uri, e.Message);
            // Keys fetched earlier stay usable while they are within the longest cache time (the key server may be down
            // for a while); after that, nothing. The next try waits for the refetch interval either way, so a failing URI
            // is not hammered either.
            var keep = previous is not null && now - previous.Fetched < _settings.MaxCacheDuration;
            return new KeySetState(
                keep ? previous!.Keys : [],
                keep ? previous!.KeyIds : [],
                keep ? previous!.Fetched : now,
                now + _settings.UnknownKeyRefetchInterval,
                now);
        }
    }

    private TimeSpan Lifetime(CacheControlHeaderValue? cacheControl)
    {
        // RFC 9111 §5.2.2: max-age is how long the response stays fresh; no-store/no-cache ask for none, which would mean a
        // fetch per assertion, so the lower bound applies.
        var wanted = cacheControl is { NoStore: false, NoCache: false, MaxAge: { } maxAge } ? maxAge : _settings.MinCacheDuration;
        return wanted < _settings.MinCacheDuration ? _settings.MinCacheDuration
            : wanted > _settings.MaxCacheDuration ? _settings.MaxCacheDuration
            : wanted;
    }

    private async Task<string> ReadBoundedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        var max = _settings.MaxResponseBytes;
        if (content.Headers.ContentLength > max)
        {
            throw new JwksFetchException($"the response is {content.Headers.ContentLength} bytes, more than Identity:ClientJwks:MaxResponseBytes ({max})");
        }

        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[max + 1];
        var length = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += read;
            if (length > max)
            {
                // Without a Content-Length (chunked) the limit is enforced while reading, never after buffering it all.
                throw new JwksFetchException($"the response is longer than Identity:ClientJwks:MaxResponseBytes ({max})");
            }
        }

        return Encoding.UTF8.GetString(buffer, 0, length);
    }

    private async ValueTask<Stream> ConnectAsync(JwksAddressGuard guard, DnsEndPoint endpoint, CancellationToken cancellationToken)
    {
        try
        {
            return await guard.ConnectAsync(endpoint, cancellationToken);
        }
        catch (AddressRefusedException refused)
        {
            Interlocked.Increment(ref _refusedConnections);
            throw new HttpRequestException($"The JWKS host '{refused.Host}' resolves to an address inside the service's network, which is refused (add it to Identity:ClientJwks:AllowedNetworks if it is a trusted key server).");
        }
    }

    public void Dispose() => _http.Dispose();

    [LoggerMessage(EventId = 4610, Level = LogLevel.Information, Message = "Fetched the JWKS of client {ClientId}: {KeyCount} signing keys, cached for {Lifetime}")]
    private static partial void LogFetched(ILogger logger, string clientId, int keyCount, TimeSpan lifetime);

    [LoggerMessage(EventId = 4611, Level = LogLevel.Warning, Message = "Could not fetch the JWKS of client {ClientId} from {Uri}: {Reason}")]
    private static partial void LogFetchFailed(ILogger logger, string clientId, string uri, string reason);

    private sealed class Entry
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public KeySetState? State { get; set; }
    }

    private sealed record KeySetState(IReadOnlyList<SecurityKey> Keys, HashSet<string> KeyIds, DateTimeOffset Fetched, DateTimeOffset Expires, DateTimeOffset Attempted);

    private sealed class JwksFetchException(string message) : Exception(message);
}

/// <summary>A client-registered host resolved to an address the <see cref="JwksAddressGuard"/> refuses.</summary>
internal sealed class AddressRefusedException(string host) : Exception($"The host '{host}' resolves to an address inside the service's network.")
{
    public string Host { get; } = host;
}
