using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace CrmSecurity.Identity.Clients;

/// <summary>
/// OpenIddict hashes client secrets with PBKDF2 (about 2 ms here) and checks every token request against the
/// hash. After PBKDF2 has accepted a secret once, this manager keeps an HMAC-SHA-256 of that secret under a
/// per-process random key, keyed by the stored hash; later requests compare digests in constant time
/// (CryptographicOperations.FixedTimeEquals) and skip PBKDF2. A wrong secret still pays the full PBKDF2 check.
/// Changing the client's secret changes the stored hash, so the cached digest no longer applies.
/// The digests never leave memory and cannot be inverted without the process key.
/// After a rotation (<see cref="ClientRules.PreviousSecretProperty"/>) the replaced secret is accepted too, until its
/// overlap ends, so every instance of the client can move to the new secret without an outage.
/// It also keeps clients found by client_id for <see cref="VerifiedSecretCache.ClientLifetime"/>: OpenIddict's
/// own entity cache lives per request, so every token request would otherwise query the clients table.
/// </summary>
internal sealed class SecretCachingApplicationManager<TApplication>(
    IOpenIddictApplicationCache<TApplication> cache,
    ILogger<OpenIddictApplicationManager<TApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<TApplication> store,
    VerifiedSecretCache verified,
    TimeProvider time)
    : OpenIddictApplicationManager<TApplication>(cache, logger, options, store)
    where TApplication : class
{
    public override async ValueTask<TApplication?> FindByClientIdAsync(string identifier, CancellationToken cancellationToken = default)
    {
        if (!verified.Enabled)
        {
            return await base.FindByClientIdAsync(identifier, cancellationToken);
        }

        if (verified.TryGetClient(identifier, out var cached) && cached is TApplication application)
        {
            return application;
        }

        var found = await base.FindByClientIdAsync(identifier, cancellationToken);
        if (found is not null)
        {
            verified.RememberClient(identifier, found);
        }

        return found;
    }

    public override async ValueTask<bool> ValidateClientSecretAsync(TApplication application, string secret, CancellationToken cancellationToken = default)
    {
        if (await base.ValidateClientSecretAsync(application, secret, cancellationToken))
        {
            return true;
        }

        // RFC 6749 §2.3.1: the client authenticates with its secret; during a rotation's overlap that is the old one or
        // the new one. Once the overlap ends the old hash is no longer compared at all (checked on every request, so no
        // cached verification outlives it).
        var previous = ClientRules.PreviousSecret(await Store.GetPropertiesAsync(application, cancellationToken));
        return previous is { } old && old.Until > time.GetUtcNow()
            && await ValidateClientSecretAsync(secret, old.Hash, cancellationToken);
    }

    protected override async ValueTask<bool> ValidateClientSecretAsync(string secret, string comparand, CancellationToken cancellationToken = default)
    {
        if (!verified.Enabled)
        {
            return await base.ValidateClientSecretAsync(secret, comparand, cancellationToken);
        }

        var digest = verified.Digest(secret);
        if (verified.Matches(comparand, digest))
        {
            return true;
        }

        if (!await base.ValidateClientSecretAsync(secret, comparand, cancellationToken))
        {
            return false;
        }

        verified.Remember(comparand, digest);
        return true;
    }
}

/// <summary>Process-local digests of client secrets that PBKDF2 has already accepted.</summary>
internal sealed class VerifiedSecretCache(IOptions<IdentitySettings> settings, TimeProvider time) : IDisposable
{
    private const int MaxEntries = 10_000;
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly ConcurrentDictionary<string, byte[]> _digests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (object Client, DateTimeOffset Until)> _clients = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time;

    /// <summary>How long a client read from the database is reused; a change made on another instance is seen after this.</summary>
    public static TimeSpan ClientLifetime { get; } = TimeSpan.FromSeconds(30);

    public bool Enabled { get; } = settings.Value.Performance.CacheVerifiedClientSecrets;

    public byte[] Digest(string secret) => HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(secret));

    public bool Matches(string storedHash, byte[] digest) =>
        _digests.TryGetValue(storedHash, out var known) && CryptographicOperations.FixedTimeEquals(known, digest);

    public void Remember(string storedHash, byte[] digest)
    {
        if (_digests.Count >= MaxEntries)
        {
            _digests.Clear();
        }

        _digests[storedHash] = digest;
    }

    public bool TryGetClient(string clientId, out object? client)
    {
        if (_clients.TryGetValue(clientId, out var entry) && entry.Until > _time.GetUtcNow())
        {
            client = entry.Client;
            return true;
        }

        client = null;
        return false;
    }

    public void RememberClient(string clientId, object client)
    {
        if (_clients.Count >= MaxEntries)
        {
            _clients.Clear();
        }

        _clients[clientId] = (client, _time.GetUtcNow() + ClientLifetime);
    }

    /// <summary>Forgets every verified secret and cached client (a client was changed or removed).</summary>
    public void Clear()
    {
        _digests.Clear();
        _clients.Clear();
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_key);
}
