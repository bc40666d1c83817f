using System.Security.Cryptography;

namespace CrmSecurity.Crypto.Primitives;

/// <summary>AES Key Wrap with Padding (RFC 5649, NIST SP 800-38F KWP) on the platform AES.</summary>
internal static class KeyWrap
{
    public static byte[] Wrap(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> plaintext)
    {
        using var aes = Create(kek);
        return aes.EncryptKeyWrapPadded(plaintext);
    }

    /// <summary>Unwraps, or throws <see cref="CryptographicException"/> when the integrity check fails.</summary>
    public static byte[] Unwrap(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> wrapped)
    {
        // RFC 5649 §3: the wrapped value is at least two 64-bit blocks and a multiple of 8 bytes; the platform
        // checks the alternative IV (0xA65959A6 || MLI) and the zero padding, and fails on any mismatch.
        if (wrapped.Length < 16 || wrapped.Length % 8 != 0)
        {
            throw new CryptographicException("The wrapped key has an invalid length.");
        }

        using var aes = Create(kek);
        return aes.DecryptKeyWrapPadded(wrapped);
    }

    private static Aes Create(ReadOnlySpan<byte> kek)
    {
        if (kek.Length is not (16 or 24 or 32))
        {
            throw new CryptographicException($"AES-KWP needs a 16-, 24- or 32-byte key-encryption key, not {kek.Length} bytes.");
        }

        var aes = Aes.Create();
        aes.SetKey(kek);
        return aes;
    }
}
