using System.Security.Cryptography;

namespace CrmSecurity.Crypto.Primitives;

/// <summary>HKDF-SHA-256 (RFC 5869) with its output-length limit checked.</summary>
internal static class KeyDerivation
{
    public const int MaxOutput = 255 * 32;

    public static void DeriveKey(ReadOnlySpan<byte> ikm, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> info, Span<byte> output)
    {
        // RFC 5869 §2.3: L <= 255 * HashLen.
        if (output.Length is 0 or > MaxOutput)
        {
            throw new CryptographicException($"HKDF-SHA-256 output must be 1 to {MaxOutput} bytes, not {output.Length}.");
        }

        HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, output, salt, info);
    }
}
