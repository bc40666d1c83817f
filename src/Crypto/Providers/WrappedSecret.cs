using System.Security.Cryptography;

namespace CrmSecurity.Crypto.Providers;

/// <summary>
/// A secret an installation keeps in its own database (an HMAC key, a pseudonym key, a data-protection key) wrapped
/// by the installation's key-encryption key with AES Key Wrap with Padding (RFC 5649), so that a copy of the database
/// alone reveals nothing. The stored text names the KEK it was wrapped under: <c>kwp1:&lt;kek id&gt;:&lt;base64&gt;</c>.
/// </summary>
public static class WrappedSecret
{
    private const string Prefix = "kwp1:";

    /// <summary>Makes a new random secret and returns the text to store; <paramref name="secret"/> is the plain value for use now.</summary>
    /// <param name="kek">The installation's key-encryption key.</param>
    /// <param name="length">Bytes of the secret (16 or more).</param>
    /// <param name="secret">The secret itself; zero it when done.</param>
    public static string Create(IKeyEncryptionKey kek, int length, out byte[] secret)
    {
        ArgumentNullException.ThrowIfNull(kek);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 16);
        secret = RandomNumberGenerator.GetBytes(length);
        return Wrap(kek, secret);
    }

    /// <summary>Wraps an existing secret (for example a clear one found in an older database) for storage.</summary>
    /// <param name="kek">The installation's key-encryption key.</param>
    /// <param name="secret">The secret.</param>
    public static string Wrap(IKeyEncryptionKey kek, ReadOnlySpan<byte> secret)
    {
        ArgumentNullException.ThrowIfNull(kek);
        if (secret.IsEmpty)
        {
            throw new ArgumentException("A secret to wrap cannot be empty.", nameof(secret));
        }

        return Prefix + kek.KeyId + ":" + Convert.ToBase64String(kek.WrapKey(secret));
    }

    /// <summary>Whether <paramref name="stored"/> has the form <see cref="Wrap"/> produces.</summary>
    /// <param name="stored">Text read from storage.</param>
    public static bool IsWrapped([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? stored) =>
        stored is not null && stored.StartsWith(Prefix, StringComparison.Ordinal) && stored.LastIndexOf(':') > Prefix.Length;

    /// <summary>The id of the KEK a stored secret was wrapped under, or null when the text is not a wrapped secret.</summary>
    /// <param name="stored">Text read from storage.</param>
    public static string? KekIdOf(string? stored) => IsWrapped(stored) ? stored[Prefix.Length..stored.LastIndexOf(':')] : null;

    /// <summary>Unwraps a stored secret.</summary>
    /// <param name="kek">The installation's key-encryption key.</param>
    /// <param name="stored">The text <see cref="Wrap"/> or <see cref="Create"/> returned.</param>
    /// <exception cref="KeyManagementException">
    /// The text is not a wrapped secret, names another KEK (this host is not configured with the installation's key: a
    /// copy of the database started elsewhere), or was altered. The message names the KEK ids, never key material.
    /// </exception>
    public static byte[] Unwrap(IKeyEncryptionKey kek, string stored)
    {
        ArgumentNullException.ThrowIfNull(kek);
        if (KekIdOf(stored) is not { } kekId)
        {
            throw new KeyManagementException("The stored secret is not in the wrapped form (kwp1:<kek id>:<base64>).");
        }

        if (!string.Equals(kekId, kek.KeyId, StringComparison.Ordinal))
        {
            throw new KeyManagementException(
                $"A secret in the database was wrapped under the key-encryption key {kekId}, but this host's key is {kek.KeyId}. " +
                "Configure Crypto:MasterKey with the installation's key (the database alone cannot be used without it).");
        }

        byte[] wrapped;
        try
        {
            wrapped = Convert.FromBase64String(stored[(stored.LastIndexOf(':') + 1)..]);
        }
        catch (FormatException e)
        {
            throw new KeyManagementException("A wrapped secret in the database is damaged (not base64).", e);
        }

        return kek.UnwrapKey(wrapped);
    }
}
