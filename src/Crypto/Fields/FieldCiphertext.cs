using System.Buffers.Binary;

namespace CrmSecurity.Crypto.Fields;

/// <summary>What a ciphertext's header says, read without any key.</summary>
/// <param name="Mode">Randomized (AES-256-GCM) or deterministic (AES-256-SIV).</param>
/// <param name="KeysetId">The keyset it was made with.</param>
/// <param name="KeyVersion">The key version it was made with.</param>
public readonly record struct FieldCiphertext(EncryptionMode Mode, uint KeysetId, uint KeyVersion)
{
    /// <summary>Reads the header of a binary ciphertext.</summary>
    /// <param name="ciphertext">The binary form.</param>
    /// <exception cref="FieldDecryptionException">The header is missing, of another format version, or names an unknown algorithm.</exception>
    public static FieldCiphertext Inspect(ReadOnlySpan<byte> ciphertext)
    {
        if (ciphertext.IsEmpty)
        {
            throw new FieldDecryptionException(DecryptFailureReason.Truncated);
        }

        if (ciphertext[0] != CiphertextHeader.FormatVersion)
        {
            throw new FieldDecryptionException(DecryptFailureReason.UnsupportedFormatVersion);
        }

        if (ciphertext.Length < CiphertextHeader.Size)
        {
            throw new FieldDecryptionException(DecryptFailureReason.Truncated);
        }

        var mode = ciphertext[1] switch
        {
            CiphertextHeader.AesGcm => EncryptionMode.Randomized,
            CiphertextHeader.AesSiv => EncryptionMode.Deterministic,
            _ => throw new FieldDecryptionException(DecryptFailureReason.WrongMode),
        };
        return new FieldCiphertext(mode, BinaryPrimitives.ReadUInt32BigEndian(ciphertext[2..]), BinaryPrimitives.ReadUInt32BigEndian(ciphertext[6..]));
    }
}

/// <summary>How a field is encrypted.</summary>
public enum EncryptionMode
{
    /// <summary>AES-256-GCM with a random nonce, bound to the row: equal values give different ciphertexts. The default.</summary>
    Randomized = 1,

    /// <summary>AES-256-SIV: equal values in one column give equal ciphertexts, for equality lookup. Not bound to the row.</summary>
    Deterministic = 2,
}
