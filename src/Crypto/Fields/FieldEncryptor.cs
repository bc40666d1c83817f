using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Crypto.Keys;

namespace CrmSecurity.Crypto.Fields;

/// <summary>
/// Randomized field encryption (AES-256-GCM) for one column, bound to its tenant, table, column and row.
/// Thread-safe; create once per column with <see cref="Keyset.CreateFieldEncryptor"/> and keep it. Nonces are
/// made inside from the system CSPRNG; callers never choose them.
/// </summary>
/// <remarks>
/// Binary form: 14-byte header (<c>01 01 keyset-id version column-check row-check</c>), 12-byte nonce,
/// ciphertext, 16-byte tag. Associated data: the header, the encoded context and the row id. Each column has
/// its own key per version, derived with HKDF-SHA-256 from the version's root key.
/// Limit: at most 2^32 encryptions per key version and column (NIST SP 800-38D §8.3, random 96-bit nonces): rotate before that.
/// </remarks>
public sealed class FieldEncryptor : IDisposable
{
    /// <summary>Bytes added to the plaintext: header, nonce and tag.</summary>
    public const int Overhead = CiphertextHeader.Size + NonceSize + TagSize;

    /// <summary>Longest row id in UTF-8 bytes.</summary>
    public const int MaxRowIdBytes = 1024;

    private const int NonceSize = 12; // NIST SP 800-38D §8.2.2: 96-bit random IVs
    private const int TagSize = 16;   // NIST SP 800-38D §5.2.1.2: full 128-bit tag
    private const string KeyLabel = "crm-security/field/v1/aes-256-gcm";

    private readonly byte[] _context;
    private readonly ushort _columnCheck;
    private readonly ColumnKeys<AesGcm> _keys;

    internal FieldEncryptor(Keyset keyset, FieldContext context)
    {
        Context = context;
        _context = context.Encode();
        _columnCheck = CiphertextHeader.ColumnCheck(_context);
        _keys = new ColumnKeys<AesGcm>(keyset, KeyLabel, _context, 32, key => new AesGcm(key, TagSize));
    }

    /// <summary>The column this encryptor is bound to.</summary>
    public FieldContext Context { get; }

    /// <summary>The key version new ciphertexts are made under.</summary>
    public uint PrimaryVersion => _keys.Primary.Version;

    /// <summary>Encrypts <paramref name="plaintext"/> for the row <paramref name="rowId"/>.</summary>
    /// <param name="plaintext">The value.</param>
    /// <param name="rowId">The row's primary key, as text (invariant culture).</param>
    /// <returns>The binary form: header, nonce, ciphertext, tag.</returns>
    public byte[] Encrypt(ReadOnlySpan<byte> plaintext, string rowId)
    {
        var output = new byte[Overhead + plaintext.Length];
        Seal(plaintext, rowId, output);
        return output;
    }

    /// <summary>Decrypts a binary ciphertext made for the row <paramref name="rowId"/>.</summary>
    /// <param name="ciphertext">The binary form.</param>
    /// <param name="rowId">The row's primary key, as text.</param>
    /// <exception cref="FieldDecryptionException">Any failure; no plaintext is returned.</exception>
    public byte[] Decrypt(ReadOnlySpan<byte> ciphertext, string rowId)
    {
        var plaintext = new byte[Math.Max(0, ciphertext.Length - Overhead)];
        Open(ciphertext, rowId, plaintext);
        return plaintext;
    }

    /// <summary>Encrypts a string (UTF-8) into the text form <c>cf1:</c> + base64url, for string columns.</summary>
    /// <param name="plaintext">The value.</param>
    /// <param name="rowId">The row's primary key, as text.</param>
    public string EncryptText(string plaintext, string rowId)
    {
        ArgumentNullException.ThrowIfNull(plaintext);
        var length = Encoding.UTF8.GetByteCount(plaintext);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var bytes = rented.AsSpan(0, Encoding.UTF8.GetBytes(plaintext, rented));
            return FieldText.Encode(Encrypt(bytes, rowId));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(rented.AsSpan(0, length));
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Decrypts the text form made by <see cref="EncryptText"/>.</summary>
    /// <param name="ciphertext">The text form.</param>
    /// <param name="rowId">The row's primary key, as text.</param>
    /// <exception cref="FieldDecryptionException">Any failure, including a malformed text form.</exception>
    public string DecryptText(string ciphertext, string rowId)
    {
        var bytes = Decrypt(FieldText.Decode(ciphertext), rowId);
        try
        {
            return FieldText.Utf8(bytes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>Encrypts a string (UTF-8) into the binary form.</summary>
    /// <param name="plaintext">The value.</param>
    /// <param name="rowId">The row's primary key, as text.</param>
    public byte[] EncryptString(string plaintext, string rowId)
    {
        ArgumentNullException.ThrowIfNull(plaintext);
        var length = Encoding.UTF8.GetByteCount(plaintext);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            return Encrypt(rented.AsSpan(0, Encoding.UTF8.GetBytes(plaintext, rented)), rowId);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(rented.AsSpan(0, length));
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Decrypts a binary ciphertext made by <see cref="EncryptString"/>.</summary>
    /// <param name="ciphertext">The binary form.</param>
    /// <param name="rowId">The row's primary key, as text.</param>
    /// <exception cref="FieldDecryptionException">Any failure.</exception>
    public string DecryptString(ReadOnlySpan<byte> ciphertext, string rowId)
    {
        var bytes = Decrypt(ciphertext, rowId);
        try
        {
            return FieldText.Utf8(bytes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>True when the ciphertext is not under this keyset's primary version (so a re-encryption job should rewrite it).</summary>
    /// <param name="ciphertext">The binary form.</param>
    public bool NeedsReencryption(ReadOnlySpan<byte> ciphertext)
    {
        var info = FieldCiphertext.Inspect(ciphertext);
        return info.KeysetId != _keys.KeysetId || info.KeyVersion != PrimaryVersion;
    }

    private void Seal(ReadOnlySpan<byte> plaintext, string rowId, Span<byte> output)
    {
        var key = _keys.Primary;
        Span<byte> buffer = stackalloc byte[MaxAadLength(rowId)];
        var aad = WriteAad(buffer, rowId, out var row);
        CiphertextHeader.Write(output, CiphertextHeader.AesGcm, _keys.KeysetId, key.Version, _columnCheck, CiphertextHeader.RowCheck(row));
        output[..CiphertextHeader.Size].CopyTo(aad);

        var nonce = output.Slice(CiphertextHeader.Size, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        var body = output.Slice(CiphertextHeader.Size + NonceSize, plaintext.Length);
        var tag = output[^TagSize..];
        var gcm = key.Rent();
        try
        {
            gcm.Encrypt(nonce, plaintext, body, tag, aad);
        }
        finally
        {
            key.Return(gcm);
        }
    }

    private void Open(ReadOnlySpan<byte> ciphertext, string rowId, Span<byte> plaintext)
    {
        var (keysetId, version, columnCheck, rowCheck) = CiphertextHeader.Read(ciphertext, CiphertextHeader.AesGcm, Overhead);
        if (keysetId != _keys.KeysetId)
        {
            throw new FieldDecryptionException(DecryptFailureReason.WrongKeyset);
        }

        if (columnCheck != _columnCheck)
        {
            throw new FieldDecryptionException(DecryptFailureReason.ColumnMismatch);
        }

        Span<byte> buffer = stackalloc byte[MaxAadLength(rowId)];
        var aad = WriteAad(buffer, rowId, out var row);
        if (rowCheck != CiphertextHeader.RowCheck(row))
        {
            throw new FieldDecryptionException(DecryptFailureReason.RowMismatch);
        }

        var primary = _keys.Primary;
        var key = version == primary.Version ? primary : _keys.Get(version);
        ciphertext[..CiphertextHeader.Size].CopyTo(aad);
        var gcm = key.Rent();
        try
        {
            // NIST SP 800-38D §7.2: the tag is verified before any plaintext is released; on mismatch the platform clears the output.
            gcm.Decrypt(
                ciphertext.Slice(CiphertextHeader.Size, NonceSize),
                ciphertext[(CiphertextHeader.Size + NonceSize)..^TagSize],
                ciphertext[^TagSize..],
                plaintext,
                aad);
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            throw new FieldDecryptionException(DecryptFailureReason.AuthenticationFailed);
        }
        finally
        {
            key.Return(gcm);
        }
    }

    // Room for the AAD with the row id at its longest UTF-8 form, so the row id is encoded once (not counted first).
    private int MaxAadLength(string rowId)
    {
        ArgumentException.ThrowIfNullOrEmpty(rowId);
        if (rowId.Length > MaxRowIdBytes)
        {
            throw RowIdTooLong(); // every UTF-16 char is at least one UTF-8 byte
        }

        return CiphertextHeader.Size + _context.Length + 2 + Encoding.UTF8.GetMaxByteCount(rowId.Length);
    }

    // AAD = header (filled in by the caller) || encoded context || 2-byte row length || row id UTF-8.
    private Span<byte> WriteAad(Span<byte> buffer, string rowId, out Span<byte> row)
    {
        var offset = CiphertextHeader.Size;
        _context.CopyTo(buffer[offset..]);
        offset += _context.Length;
        var written = Encoding.UTF8.GetBytes(rowId, buffer[(offset + 2)..]);
        if (written > MaxRowIdBytes)
        {
            throw RowIdTooLong();
        }

        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(buffer[offset..], (ushort)written);
        row = buffer.Slice(offset + 2, written);
        return buffer[..(offset + 2 + written)];
    }

    private static ArgumentException RowIdTooLong() => new($"The row id is longer than {MaxRowIdBytes} UTF-8 bytes.", "rowId");

    /// <summary>Frees the derived column keys and cipher objects (zeroing the keys).</summary>
    public void Dispose() => _keys.Dispose();

    /// <summary>Names the column and primary version; never key material.</summary>
    public override string ToString() => $"FieldEncryptor AES-256-GCM {Context.Tenant}/{Context.Table}/{Context.Column} (primary v{PrimaryVersion})";
}
