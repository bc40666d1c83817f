using System.Buffers.Binary;
using System.Security.Cryptography;

namespace CrmSecurity.Crypto.Fields;

/// <summary>
/// The 14-byte header every field ciphertext starts with (documented byte by byte in docs/crypto-formats.md, §3 "Binary form"):
/// <c>format(1) algorithm(1) keyset-id(4, BE) key-version(4, BE) column-check(2, BE) row-check(2, BE)</c>.
/// The whole header is authenticated (it is associated data of the AEAD / SIV), so none of it can be changed
/// without the decryption failing.
/// </summary>
internal static class CiphertextHeader
{
    public const byte FormatVersion = 0x01;
    public const byte AesGcm = 0x01;
    public const byte AesSiv = 0x02;
    public const int Size = 14;

    public static void Write(Span<byte> destination, byte algorithm, uint keysetId, uint version, ushort columnCheck, ushort rowCheck)
    {
        destination[0] = FormatVersion;
        destination[1] = algorithm;
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], keysetId);
        BinaryPrimitives.WriteUInt32BigEndian(destination[6..], version);
        BinaryPrimitives.WriteUInt16BigEndian(destination[10..], columnCheck);
        BinaryPrimitives.WriteUInt16BigEndian(destination[12..], rowCheck);
    }

    /// <summary>Checks length, format version and algorithm; returns the key version and checks.</summary>
    public static (uint KeysetId, uint Version, ushort ColumnCheck, ushort RowCheck) Read(ReadOnlySpan<byte> ciphertext, byte expectedAlgorithm, int minimumLength)
    {
        if (ciphertext.IsEmpty)
        {
            throw new FieldDecryptionException(DecryptFailureReason.Truncated);
        }

        if (ciphertext[0] != FormatVersion)
        {
            throw new FieldDecryptionException(DecryptFailureReason.UnsupportedFormatVersion, $"Found version byte 0x{ciphertext[0]:x2}; this library reads 0x{FormatVersion:x2}.");
        }

        if (ciphertext.Length < Size)
        {
            throw new FieldDecryptionException(DecryptFailureReason.Truncated);
        }

        if (ciphertext[1] != expectedAlgorithm)
        {
            throw new FieldDecryptionException(DecryptFailureReason.WrongMode);
        }

        if (ciphertext.Length < minimumLength)
        {
            throw new FieldDecryptionException(DecryptFailureReason.Truncated);
        }

        return (
            BinaryPrimitives.ReadUInt32BigEndian(ciphertext[2..]),
            BinaryPrimitives.ReadUInt32BigEndian(ciphertext[6..]),
            BinaryPrimitives.ReadUInt16BigEndian(ciphertext[10..]),
            BinaryPrimitives.ReadUInt16BigEndian(ciphertext[12..]));
    }

    /// <summary>First two bytes of SHA-256 over the encoded context: tells "another column" apart from tampering.</summary>
    public static ushort ColumnCheck(ReadOnlySpan<byte> encodedContext)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(encodedContext, hash);
        return BinaryPrimitives.ReadUInt16BigEndian(hash);
    }

    /// <summary>FNV-1a (32-bit) over the row id's UTF-8 bytes folded to 16 bits: tells "another row" apart from tampering. Not a security check; the AEAD is.</summary>
    public static ushort RowCheck(ReadOnlySpan<byte> row)
    {
        var hash = 2166136261u;
        foreach (var b in row)
        {
            hash = (hash ^ b) * 16777619u;
        }

        return (ushort)((hash >> 16) ^ (hash & 0xffff));
    }
}
