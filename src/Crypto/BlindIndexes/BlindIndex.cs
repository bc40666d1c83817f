using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.BlindIndexes;

/// <summary>
/// Computes one blind index: HMAC-SHA-256 over the normalised (and transformed) value's UTF-8 bytes with a
/// key derived by HKDF-SHA-256 for this tenant, table, column and index name, truncated to the configured
/// bits. Thread-safe; keyed HMAC states are pooled, so no key schedule runs per call.
/// </summary>
public sealed class BlindIndex : IDisposable
{
    private const string KeyLabel = "crm-security/blind-index/v1/hmac-sha-256";
    private readonly Pool<IncrementalHash> _hmacs;
    private readonly SecretBytes _key;

    internal BlindIndex(Keyset keyset, FieldContext context, BlindIndexDefinition definition, uint version)
    {
        keyset.ThrowIfDisposed();
        Context = context;
        Definition = definition;
        KeysetId = keyset.Id;
        KeyVersion = version;
        var key = keyset.Find(version);
        if (key?.Material is not { } material)
        {
            throw new InvalidOperationException($"Keyset '{keyset.Name}' has no live version {version} to derive a blind-index key from.");
        }

        var contextBytes = context.Encode();
        var label = Encoding.ASCII.GetBytes(KeyLabel);
        var name = Encoding.UTF8.GetBytes(definition.Name);
        var info = new byte[label.Length + 1 + 8 + contextBytes.Length + 2 + name.Length];
        label.CopyTo(info, 0);
        BinaryPrimitives.WriteUInt32BigEndian(info.AsSpan(label.Length + 1), keyset.Id);
        BinaryPrimitives.WriteUInt32BigEndian(info.AsSpan(label.Length + 5), version);
        contextBytes.CopyTo(info, label.Length + 9);
        BinaryPrimitives.WriteUInt16BigEndian(info.AsSpan(label.Length + 9 + contextBytes.Length), (ushort)name.Length);
        name.CopyTo(info, label.Length + 11 + contextBytes.Length);
        _key = SecretBytes.Create(32, output => KeyDerivation.DeriveKey(material.Span, default, info, output));
        _hmacs = new Pool<IncrementalHash>(() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key.Span));
    }

    /// <summary>The column.</summary>
    public FieldContext Context { get; }

    /// <summary>The definition.</summary>
    public BlindIndexDefinition Definition { get; }

    /// <summary>The keyset the index key is derived from.</summary>
    public uint KeysetId { get; }

    /// <summary>The key version the index key is derived from (the keyset's primary, unless made for a blind-index rotation's recompute or lookup window).</summary>
    public uint KeyVersion { get; }

    /// <summary>The blind index of <paramref name="value"/>: <see cref="BlindIndexDefinition.Bytes"/> bytes, unused low bits zero.</summary>
    /// <param name="value">The raw value; it is normalised and transformed first.</param>
    /// <exception cref="FormatException">The value is not of the normaliser's kind.</exception>
    public byte[] Compute(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var indexed = Definition.Transform.Apply(Definition.Normaliser.Normalise(value));
        var output = new byte[Definition.Bytes];
        ComputeRaw(indexed, output);
        return output;
    }

    /// <summary>
    /// The blind index of a search fragment for a partial index (last-N, prefix-N): the fragment is normalised
    /// with <see cref="Normaliser.NormaliseFragment"/> and then transformed, so "555-0100" matches the last-4
    /// index of "+1 212 555 0100". For a whole-value index this is <see cref="Compute"/>.
    /// </summary>
    /// <param name="fragment">The fragment the user typed.</param>
    public byte[] ComputeFragment(string fragment)
    {
        ArgumentNullException.ThrowIfNull(fragment);
        if (Definition.Transform.Characters is null)
        {
            return Compute(fragment);
        }

        var output = new byte[Definition.Bytes];
        ComputeRaw(Definition.Transform.Apply(Definition.Normaliser.NormaliseFragment(fragment)), output);
        return output;
    }

    /// <summary>Like <see cref="Compute"/> but on a value that is already normalised and transformed (for bulk jobs and benchmarks).</summary>
    internal void ComputeRaw(string indexed, Span<byte> output)
    {
        var length = Encoding.UTF8.GetMaxByteCount(indexed.Length);
        byte[]? rented = null;
        var buffer = length <= 512 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length));
        Span<byte> mac = stackalloc byte[32];
        var hmac = _hmacs.Rent();
        try
        {
            var written = Encoding.UTF8.GetBytes(indexed, buffer);
            hmac.AppendData(buffer[..written]);
            hmac.GetHashAndReset(mac);
            CryptographicOperations.ZeroMemory(buffer[..written]);
        }
        finally
        {
            _hmacs.Return(hmac);
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        Truncate(mac, Definition.Bits, output);
    }

    /// <summary>Keeps the leading <paramref name="bits"/> bits of <paramref name="mac"/>, zeroing the rest of the last byte.</summary>
    internal static void Truncate(ReadOnlySpan<byte> mac, int bits, Span<byte> output)
    {
        var bytes = (bits + 7) / 8;
        mac[..bytes].CopyTo(output);
        var spare = (bytes * 8) - bits;
        if (spare > 0)
        {
            output[bytes - 1] &= (byte)(0xff << spare);
        }
    }

    /// <summary>Zeroes the index key and frees the HMAC states.</summary>
    public void Dispose()
    {
        _hmacs.Dispose();
        _key.Dispose();
    }

    /// <summary>Names the index; never key material.</summary>
    public override string ToString() => $"BlindIndex '{Definition.Name}' on {Context.Tenant}/{Context.Table}/{Context.Column} ({Definition.Bits} bits, {Definition.Normaliser}, {Definition.Transform})";
}
