using System.Buffers.Binary;
using System.Text;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.Fields;

/// <summary>
/// Per-column keys of one keyset, derived lazily per version with HKDF-SHA-256 and cached with a pool of
/// ready cipher objects, so the hot path neither derives keys nor allocates cipher objects.
/// </summary>
internal sealed class ColumnKeys<T> : IDisposable
    where T : class, IDisposable
{
    private readonly Keyset _keyset;
    private readonly string _label;
    private readonly byte[] _context;
    private readonly int _keyLength;
    private readonly KeyedFactory _factory;
    private readonly Slot?[] _slots;
    private int _disposed;

    public ColumnKeys(Keyset keyset, string label, byte[] encodedContext, int keyLength, KeyedFactory factory)
    {
        _keyset = keyset;
        _label = label;
        _context = encodedContext;
        _keyLength = keyLength;
        _factory = factory;
        _slots = new Slot?[keyset.Keys.Count];
        Primary = Get(keyset.PrimaryVersion);
    }

    public Slot Primary { get; }

    public uint KeysetId => _keyset.Id;

    /// <summary>The slot for <paramref name="version"/>, or a <see cref="FieldDecryptionException"/> saying why there is none.</summary>
    public Slot Get(uint version)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (version == 0 || version > (uint)_slots.Length)
        {
            throw new FieldDecryptionException(DecryptFailureReason.UnknownKeyVersion, $"Keyset '{_keyset.Name}' has versions 1 to {_slots.Length}; the ciphertext names version {version}.");
        }

        var slot = Volatile.Read(ref _slots[version - 1]);
        if (slot is not null)
        {
            return slot;
        }

        var key = _keyset.Find(version)!;
        if (key.Status == KeyStatus.Destroyed || key.Material is null)
        {
            throw new FieldDecryptionException(DecryptFailureReason.KeyDestroyed, $"Version {version} of keyset '{_keyset.Name}' is destroyed.");
        }

        var created = new Slot(version, Derive(key), _factory);
        var existing = Interlocked.CompareExchange(ref _slots[version - 1], created, null);
        if (existing is not null)
        {
            created.Dispose();
            return existing;
        }

        return created;
    }

    // HKDF-SHA-256 (RFC 5869): IKM = the version's root key, no salt, info = label || 0x00 || keyset id || version || context.
    private SecretBytes Derive(DataKey key)
    {
        var label = Encoding.ASCII.GetBytes(_label);
        var info = new byte[label.Length + 1 + 8 + _context.Length];
        label.CopyTo(info, 0);
        BinaryPrimitives.WriteUInt32BigEndian(info.AsSpan(label.Length + 1), _keyset.Id);
        BinaryPrimitives.WriteUInt32BigEndian(info.AsSpan(label.Length + 5), key.Version);
        _context.CopyTo(info, label.Length + 9);
        var material = key.Material!;
        return SecretBytes.Create(_keyLength, output => KeyDerivation.DeriveKey(material.Span, default, info, output));
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            foreach (var slot in _slots)
            {
                slot?.Dispose();
            }
        }
    }

    /// <summary>Makes a cipher object from derived key bytes (which it copies; the span is not kept).</summary>
    internal delegate T KeyedFactory(ReadOnlySpan<byte> key);

    internal sealed class Slot : IDisposable
    {
        private readonly SecretBytes _key;
        private readonly Pool<T> _pool;

        public Slot(uint version, SecretBytes key, KeyedFactory factory)
        {
            Version = version;
            _key = key;
            _pool = new Pool<T>(() => factory(_key.Span));
        }

        public uint Version { get; }

        public T Rent() => _pool.Rent();

        public void Return(T item) => _pool.Return(item);

        public void Dispose()
        {
            _pool.Dispose();
            _key.Dispose();
        }
    }
}
