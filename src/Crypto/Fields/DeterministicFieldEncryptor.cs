using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.Fields;

/// <summary>
/// Deterministic field encryption (AES-256-SIV, RFC 5297) for one column, for equality lookup: the same value
/// under the same key version and column always gives the same ciphertext. Bound to tenant, table and column,
/// not to a row (equal values in different rows must match). Use only where equality lookup is needed;
/// prefer <see cref="FieldEncryptor"/> with a blind index. Thread-safe.
/// </summary>
/// <remarks>
/// Binary form: 14-byte header (<c>01 02 keyset-id version column-check 0000</c>), 16-byte synthetic IV,
/// ciphertext. S2V associated data: [header, encoded context].
/// </remarks>
public sealed class DeterministicFieldEncryptor : IDisposable
{
    /// <summary>Bytes added to the plaintext: header and synthetic IV.</summary>
    public const int Overhead = CiphertextHeader.Size + AesSiv.SivSize;

    private const string KeyLabel = "crm-security/field/v1/aes-256-siv";
    private readonly byte[] _context;
    private readonly ushort _columnCheck;
    private readonly ColumnKeys<AesSiv> _keys;

    internal DeterministicFieldEncryptor(Keyset keyset, FieldContext context)
    {
        Context = context;
        _context = context.Encode();
        _columnCheck = CiphertextHeader.ColumnCheck(_context);
        _keys = new ColumnKeys<AesSiv>(keyset, KeyLabel, _context, 64, key => new AesSiv(key));
    }

    /// <summary>The column this encryptor is bound to.</summary>
    public FieldContext Context { get; }

    /// <summary>The key version new ciphertexts are made under.</summary>
    public uint PrimaryVersion => _keys.Primary.Version;

    /// <summary>Encrypts deterministically.</summary>
    /// <param name="plaintext">The value.</param>
    public byte[] Encrypt(ReadOnlySpan<byte> plaintext)
    {
        var key = _keys.Primary;
        var output = new byte[Overhead + plaintext.Length];
        CiphertextHeader.Write(output, CiphertextHeader.AesSiv, _keys.KeysetId, key.Version, _columnCheck, 0);
        var siv = key.Rent();
        try
        {
            siv.Encrypt(plaintext, output.AsSpan(0, CiphertextHeader.Size), _context, 2, output.AsSpan(CiphertextHeader.Size));
        }
        finally
        {
            key.Return(siv);
        }

        return output;
    }

    /// <summary>Decrypts a binary ciphertext made by <see cref="Encrypt"/>.</summary>
    /// <param name="ciphertext">The binary form.</param>
    /// <exception cref="FieldDecryptionException">Any failure; no plaintext is returned.</exception>
    public byte[] Decrypt(ReadOnlySpan<byte> ciphertext)
    {
        var (keysetId, version, columnCheck, rowCheck) = CiphertextHeader.Read(ciphertext, CiphertextHeader.AesSiv, Overhead);
        if (keysetId != _keys.KeysetId)
        {
            throw new FieldDecryptionException(DecryptFailureReason.WrongKeyset);
        }

        if (columnCheck != _columnCheck)
        {
            throw new FieldDecryptionException(DecryptFailureReason.ColumnMismatch);
        }

        if (rowCheck != 0)
        {
            throw new FieldDecryptionException(DecryptFailureReason.AuthenticationFailed);
        }

        var key = _keys.Get(version);
        var plaintext = new byte[ciphertext.Length - Overhead];
        var siv = key.Rent();
        bool ok;
        try
        {
            ok = siv.TryDecrypt(ciphertext[CiphertextHeader.Size..], ciphertext[..CiphertextHeader.Size], _context, 2, plaintext);
        }
        finally
        {
            key.Return(siv);
        }

        // RFC 5297 §2.7: on a tag mismatch only FAIL is returned (the plaintext buffer is already zeroed).
        return ok ? plaintext : throw new FieldDecryptionException(DecryptFailureReason.AuthenticationFailed);
    }

    /// <summary>Encrypts a string (UTF-8) into the binary form.</summary>
    /// <param name="plaintext">The value.</param>
    public byte[] EncryptString(string plaintext)
    {
        ArgumentNullException.ThrowIfNull(plaintext);
        var length = Encoding.UTF8.GetByteCount(plaintext);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            return Encrypt(rented.AsSpan(0, Encoding.UTF8.GetBytes(plaintext, rented)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(rented.AsSpan(0, length));
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Decrypts a binary ciphertext made by <see cref="EncryptString"/>.</summary>
    /// <param name="ciphertext">The binary form.</param>
    public string DecryptString(ReadOnlySpan<byte> ciphertext)
    {
        var bytes = Decrypt(ciphertext);
        try
        {
            return FieldText.Utf8(bytes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>Encrypts a string into the text form (<c>cf1:</c> + base64url).</summary>
    /// <param name="plaintext">The value.</param>
    public string EncryptText(string plaintext) => FieldText.Encode(EncryptString(plaintext));

    /// <summary>Decrypts the text form.</summary>
    /// <param name="ciphertext">The text form.</param>
    public string DecryptText(string ciphertext) => DecryptString(FieldText.Decode(ciphertext));

    /// <summary>True when the ciphertext is not under this keyset's primary version.</summary>
    /// <param name="ciphertext">The binary form.</param>
    public bool NeedsReencryption(ReadOnlySpan<byte> ciphertext)
    {
        var info = FieldCiphertext.Inspect(ciphertext);
        return info.KeysetId != _keys.KeysetId || info.KeyVersion != PrimaryVersion;
    }

    /// <summary>Frees the derived column keys (zeroing them).</summary>
    public void Dispose() => _keys.Dispose();

    /// <summary>Names the column and primary version; never key material.</summary>
    public override string ToString() => $"DeterministicFieldEncryptor AES-256-SIV {Context.Tenant}/{Context.Table}/{Context.Column} (primary v{PrimaryVersion})";
}
