using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;

namespace CrmSecurity.Crypto.Benchmarks;

/// <summary>
/// Encrypt + decrypt of one field against raw <see cref="AesGcm"/> one-shot calls doing the same work: a cached
/// AesGcm for the key, a fresh random 96-bit nonce, a new output array for the ciphertext (nonce, body, tag) and
/// one for the plaintext. The library adds the header, the context/row associated data and the key lookup.
/// </summary>
[MemoryDiagnoser]
public class FieldEncryptionBenchmarks
{
    private Keyset _keyset = null!;
    private FieldEncryptor _encryptor = null!;
    private AesGcm _raw = null!;
    private byte[] _plaintext = null!;
    private byte[] _aad = null!;
    private byte[] _aadWithoutContext = null!;

    [Params(16, 32, 64, 1024)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _keyset = KeysetBuilder.CreateNew("fields").Build();
        _encryptor = _keyset.CreateFieldEncryptor(new FieldContext("acme", "contacts", "email"));
        _raw = new AesGcm(RandomNumberGenerator.GetBytes(32), 16);
        _plaintext = RandomNumberGenerator.GetBytes(Size);
        _aad = RandomNumberGenerator.GetBytes(14 + 2 + 4 + 2 + 8 + 2 + 5 + 2 + 4); // header, context (acme/contacts/email), row id 4711
        _aadWithoutContext = RandomNumberGenerator.GetBytes(14 + 2 + 4); // header and row id only: what the AAD would be if the context (already in the key) left it
    }

    [Benchmark(Baseline = true)]
    public byte[] RawAesGcm()
    {
        var sealedBytes = new byte[12 + Size + 16];
        var nonce = sealedBytes.AsSpan(0, 12);
        RandomNumberGenerator.Fill(nonce);
        _raw.Encrypt(nonce, _plaintext, sealedBytes.AsSpan(12, Size), sealedBytes.AsSpan(12 + Size), default);
        var opened = new byte[Size];
        _raw.Decrypt(sealedBytes.AsSpan(0, 12), sealedBytes.AsSpan(12, Size), sealedBytes.AsSpan(12 + Size), opened, default);
        return opened;
    }

    /// <summary>The same raw calls with associated data of the length the field format binds (header, context, row id), for comparison.</summary>
    [Benchmark]
    public byte[] RawAesGcmWithAad()
    {
        var sealedBytes = new byte[12 + Size + 16];
        var nonce = sealedBytes.AsSpan(0, 12);
        RandomNumberGenerator.Fill(nonce);
        _raw.Encrypt(nonce, _plaintext, sealedBytes.AsSpan(12, Size), sealedBytes.AsSpan(12 + Size), _aad);
        var opened = new byte[Size];
        _raw.Decrypt(sealedBytes.AsSpan(0, 12), sealedBytes.AsSpan(12, Size), sealedBytes.AsSpan(12 + Size), opened, _aad);
        return opened;
    }

    /// <summary>The same raw calls with associated data of header and row id only, to see what leaving the context out of the AAD would save.</summary>
    [Benchmark]
    public byte[] RawAesGcmWithShortAad()
    {
        var sealedBytes = new byte[12 + Size + 16];
        var nonce = sealedBytes.AsSpan(0, 12);
        RandomNumberGenerator.Fill(nonce);
        _raw.Encrypt(nonce, _plaintext, sealedBytes.AsSpan(12, Size), sealedBytes.AsSpan(12 + Size), _aadWithoutContext);
        var opened = new byte[Size];
        _raw.Decrypt(sealedBytes.AsSpan(0, 12), sealedBytes.AsSpan(12, Size), sealedBytes.AsSpan(12 + Size), opened, _aadWithoutContext);
        return opened;
    }

    /// <summary>
    /// The floor of a format that binds the row without associated data (issue 16's "speed" item): the column and key
    /// version through the derived key as today, the row id sealed inside the plaintext (2-byte length, then the row id
    /// "4711", checked after decryption) and no AAD call. Raw calls with what such a format must add and nothing else: the
    /// 14-byte header, the sealed row id (6 more bytes through CTR and GHASH), staging the plaintext and copying the value out.
    /// </summary>
    [Benchmark]
    public byte[] RawAesGcmRowSealed()
    {
        ReadOnlySpan<byte> row = "\0\u00044711"u8;
        var sealedBytes = new byte[14 + 12 + row.Length + Size + 16];
        Span<byte> staged = stackalloc byte[row.Length + Size];
        row.CopyTo(staged);
        _plaintext.CopyTo(staged[row.Length..]);
        var nonce = sealedBytes.AsSpan(14, 12);
        RandomNumberGenerator.Fill(nonce);
        var body = sealedBytes.AsSpan(26, staged.Length);
        var tag = sealedBytes.AsSpan(26 + staged.Length);
        _raw.Encrypt(nonce, staged, body, tag, default);
        _raw.Decrypt(nonce, body, tag, staged, default);
        if (!staged[..row.Length].SequenceEqual(row))
        {
            throw new CryptographicException("row mismatch");
        }

        var opened = staged[row.Length..].ToArray();
        CryptographicOperations.ZeroMemory(staged);
        return opened;
    }

    [Benchmark]
    public byte[] FieldEncryptor() => _encryptor.Decrypt(_encryptor.Encrypt(_plaintext, "4711"), "4711");

    [GlobalCleanup]
    public void Cleanup()
    {
        _encryptor.Dispose();
        _keyset.Dispose();
        _raw.Dispose();
    }
}
