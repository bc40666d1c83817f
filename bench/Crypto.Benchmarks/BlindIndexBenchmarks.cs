using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;

namespace CrmSecurity.Crypto.Benchmarks;

/// <summary>
/// A blind index of an email address (normalise, HMAC-SHA-256, truncate) against the raw platform
/// <see cref="HMACSHA256.HashData(byte[], byte[])"/> one-shot over the same string's UTF-8 bytes.
/// </summary>
[MemoryDiagnoser]
public class BlindIndexBenchmarks
{
    private const string Email = "alice.example@example.com";
    private Keyset _keyset = null!;
    private BlindIndex _index = null!;
    private byte[] _key = null!;

    [GlobalSetup]
    public void Setup()
    {
        _keyset = KeysetBuilder.CreateNew("blind-index").Build();
        _index = _keyset.CreateBlindIndex(new FieldContext("acme", "contacts", "email"), new BlindIndexDefinition("email", 16, Normaliser.Email));
        _key = RandomNumberGenerator.GetBytes(32);
    }

    [Benchmark(Baseline = true)]
    public byte[] RawHmacSha256() => HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(Email));

    [Benchmark]
    public byte[] BlindIndex() => _index.Compute(Email);

    [GlobalCleanup]
    public void Cleanup()
    {
        _index.Dispose();
        _keyset.Dispose();
    }
}
