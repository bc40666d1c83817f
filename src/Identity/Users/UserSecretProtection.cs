using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Identity.Data;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// How a user's second-factor secrets are kept at rest (OWASP ASVS 4.0.3 V2.8.x, V2.9.x):
/// <list type="bullet">
/// <item>the authenticator (TOTP) key, which the server must read back, is encrypted with AES-256-GCM
/// (<see cref="SecretBox"/>) under an Identity secret, bound to the user's id as associated data, so a key copied to
/// another user's row does not open;</item>
/// <item>recovery codes, which the server only compares, are kept as HMAC-SHA-256 digests under another Identity secret
/// (a keyed hash: a database reader cannot test guesses offline), compared in constant time, each removed when used.</item>
/// </list>
/// Both keys exist only wrapped by the installation's key-encryption key (<see cref="IdentitySecrets"/>). Values written
/// by an older build (clear text) are still read, and converted at start by <see cref="UserSecretsUpgrade"/>.
/// </summary>
internal sealed class UserSecretProtection(IdentitySecrets secrets) : IDisposable
{
    /// <summary>Prefix of a recovery-code set stored as keyed digests (an older build stored the codes themselves).</summary>
    public const string HashedCodesPrefix = "rch1:";

    private const string AuthenticatorKeysSecret = "authenticator-keys.v1";
    private const string RecoveryCodesSecret = "recovery-codes.v1";
    private SecretBox? _box;
    private byte[]? _recoveryKey;

    public async Task<string> SealAuthenticatorKeyAsync(string userId, string key, CancellationToken cancellationToken) =>
        (await BoxAsync(cancellationToken)).Seal(key, AssociatedData(userId));

    /// <summary>The clear key, or null when the stored value does not open for this user (altered, or moved from another row).</summary>
    public async Task<string?> OpenAuthenticatorKeyAsync(string userId, string stored, CancellationToken cancellationToken)
    {
        if (!SecretBox.IsSealed(stored))
        {
            return stored; // written by an older build; sealed at the next start
        }

        try
        {
            return (await BoxAsync(cancellationToken)).Open(stored, AssociatedData(userId));
        }
        catch (CryptographicException)
        {
            return null; // fail closed: no key, no TOTP sign-in
        }
    }

    public async Task<string> HashCodesAsync(IEnumerable<string> codes, CancellationToken cancellationToken)
    {
        var key = await RecoveryKeyAsync(cancellationToken);
        return HashedCodesPrefix + string.Join(';', codes.Select(code => Digest(key, code)));
    }

    /// <summary>
    /// Finds <paramref name="code"/> among the stored codes, comparing its digest with every entry in constant time;
    /// returns the remaining set to store (always as digests), or null when the code is not among them.
    /// </summary>
    public async Task<string?> RedeemAsync(string stored, string code, CancellationToken cancellationToken)
    {
        var key = await RecoveryKeyAsync(cancellationToken);
        var entries = Digests(key, stored);
        var candidate = Encoding.ASCII.GetBytes(Digest(key, code));
        var found = -1;
        for (var index = 0; index < entries.Count; index++)
        {
            // Every entry is compared, and in constant time: neither timing nor early exit tells which one matched.
            if (CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(entries[index]), candidate) && found < 0)
            {
                found = index;
            }
        }

        if (found < 0)
        {
            return null;
        }

        entries.RemoveAt(found);
        return HashedCodesPrefix + string.Join(';', entries);
    }

    public static int Count(string? stored) =>
        string.IsNullOrEmpty(stored) ? 0 : Strip(stored).Split(';', StringSplitOptions.RemoveEmptyEntries).Length;

    /// <summary>A stored set in the digest form, whatever form it was in.</summary>
    public async Task<string> ToHashedAsync(string stored, CancellationToken cancellationToken)
    {
        if (stored.StartsWith(HashedCodesPrefix, StringComparison.Ordinal))
        {
            return stored;
        }

        var key = await RecoveryKeyAsync(cancellationToken);
        return HashedCodesPrefix + string.Join(';', Digests(key, stored));
    }

    public void Dispose()
    {
        _box?.Dispose();
        if (_recoveryKey is not null)
        {
            CryptographicOperations.ZeroMemory(_recoveryKey);
        }
    }

    private static string AssociatedData(string userId) => "crm-security/identity/authenticator-key/" + userId;

    /// <summary>Digests of a stored set: entries already digested are kept, clear codes of an older build are digested.</summary>
    private static List<string> Digests(byte[] key, string stored) => stored.StartsWith(HashedCodesPrefix, StringComparison.Ordinal)
        ? [.. Strip(stored).Split(';', StringSplitOptions.RemoveEmptyEntries)]
        : [.. stored.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(code => Digest(key, code))];

    private static string Strip(string stored) => stored.StartsWith(HashedCodesPrefix, StringComparison.Ordinal) ? stored[HashedCodesPrefix.Length..] : stored;

    /// <summary>HMAC-SHA-256 of the code as typed, without surrounding spaces and in upper case (the codes are upper case).</summary>
    private static string Digest(byte[] key, string code) =>
        Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(code.Trim().ToUpperInvariant())));

    private async Task<SecretBox> BoxAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _box) is { } box)
        {
            return box;
        }

        var key = await secrets.GetAsync(AuthenticatorKeysSecret, cancellationToken);
        var made = new SecretBox(key);
        CryptographicOperations.ZeroMemory(key);
        if (Interlocked.CompareExchange(ref _box, made, null) is { } winner)
        {
            made.Dispose();
            return winner;
        }

        return made;
    }

    private async Task<byte[]> RecoveryKeyAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _recoveryKey) is { } key)
        {
            return key;
        }

        var loaded = await secrets.GetAsync(RecoveryCodesSecret, cancellationToken);
        return Interlocked.CompareExchange(ref _recoveryKey, loaded, null) ?? loaded;
    }
}
