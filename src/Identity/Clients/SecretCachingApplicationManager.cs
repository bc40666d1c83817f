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
/// </summary>
internal sealed class SecretCachingApplicationManager<TApplication>(
    IOpenIddictApplicationCache<TApplication> cache,
    ILogger<OpenIddictApplicationManager<TApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<TApplication> store,
    VerifiedSecretCache verified)
    : OpenIddictApplicationManager<TApplication>(cache, logger, options, store)
    where TApplication : class
{
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
internal sealed class VerifiedSecretCache(IOptions<IdentitySettings> settings) : IDisposable
{
    private const int MaxEntries = 10_000;
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly ConcurrentDictionary<string, byte[]> _digests = new(StringComparer.Ordinal);

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

    /// <summary>Forgets every verified secret (a client's secret was changed or the client removed).</summary>
    public void Clear() => _digests.Clear();

    public void Dispose() => CryptographicOperations.ZeroMemory(_key);
}
