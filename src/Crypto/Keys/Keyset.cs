using System.Globalization;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.Keys;

/// <summary>
/// An immutable, thread-safe set of versioned data keys with one primary, made by <see cref="KeysetBuilder"/>.
/// A keyset is an opaque handle: it never shows its key material (not in <see cref="ToString"/>, not in
/// exceptions), and its keys are zeroed when it is disposed. Encrypt with the objects it creates
/// (<see cref="CreateFieldEncryptor"/>, <see cref="CreateDeterministicFieldEncryptor"/>).
/// </summary>
public sealed class Keyset : IDisposable
{
    private readonly DataKey[] _keys; // index = version - 1
    private int _disposed;

    internal Keyset(string name, uint id, uint primaryVersion, DataKey[] keys)
    {
        Name = name;
        Id = id;
        PrimaryVersion = primaryVersion;
        _keys = keys;
        Versions = [.. keys.Select(k => new KeyVersionInfo(k.Version, k.Status, k.CreatedAt, k.Version == primaryVersion))];
    }

    /// <summary>The keyset's name in the keyring (for example <c>fields</c>).</summary>
    public string Name { get; }

    /// <summary>A random 32-bit identifier written into every ciphertext, so data from another keyset is recognised as such.</summary>
    public uint Id { get; }

    /// <summary>The version new data is encrypted under.</summary>
    public uint PrimaryVersion { get; }

    /// <summary>Metadata of every version, oldest first.</summary>
    public IReadOnlyList<KeyVersionInfo> Versions { get; }

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    internal DataKey Primary => Find(PrimaryVersion)!;

    /// <summary>Creates the randomized (AES-256-GCM) encryptor for one column; cache it, it is thread-safe.</summary>
    /// <param name="context">Tenant, table and column the ciphertexts are bound to.</param>
    public FieldEncryptor CreateFieldEncryptor(FieldContext context)
    {
        ThrowIfDisposed();
        return new FieldEncryptor(this, context);
    }

    /// <summary>Creates the deterministic (AES-256-SIV) encryptor for one column; cache it, it is thread-safe.</summary>
    /// <param name="context">Tenant, table and column the ciphertexts are bound to.</param>
    public DeterministicFieldEncryptor CreateDeterministicFieldEncryptor(FieldContext context)
    {
        ThrowIfDisposed();
        return new DeterministicFieldEncryptor(this, context);
    }

    /// <summary>Creates a blind index for one column from this keyset's primary version; cache it, it is thread-safe.</summary>
    /// <param name="context">Tenant, table and column.</param>
    /// <param name="definition">The index definition.</param>
    public BlindIndexes.BlindIndex CreateBlindIndex(FieldContext context, BlindIndexes.BlindIndexDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(definition);
        ThrowIfDisposed();
        return new BlindIndexes.BlindIndex(this, context, definition, PrimaryVersion);
    }

    /// <summary>
    /// Creates a blind index from a given version (not destroyed): the recompute job of a blind-index rotation writes under
    /// the new version, and lookups during its window try every live version.
    /// </summary>
    internal BlindIndexes.BlindIndex CreateBlindIndex(FieldContext context, BlindIndexes.BlindIndexDefinition definition, uint version)
    {
        ThrowIfDisposed();
        return new BlindIndexes.BlindIndex(this, context, definition, version);
    }

    /// <summary>
    /// The versions a blind-index lookup tries, primary first: every version not destroyed. Outside a rotation that is the
    /// primary alone; during one (a staged version, or an old version not yet destroyed) stored indexes may be under
    /// either, so both are looked for (docs/crypto-operations.md, blind-index rotation).
    /// </summary>
    internal IReadOnlyList<uint> LookupVersions() =>
        [PrimaryVersion, .. Versions.Where(v => v.Status != KeyStatus.Destroyed && !v.IsPrimary).Select(v => v.Version).OrderDescending()];

    /// <summary>The version a blind-index recompute writes under: the staged version (active, not primary) when there is one, else the primary.</summary>
    internal uint RecomputeVersion() =>
        Versions.Where(v => v.Status == KeyStatus.Active && !v.IsPrimary).Select(v => v.Version).DefaultIfEmpty(PrimaryVersion).Max();

    /// <summary>A copy of one version's root key in clear; public only through <see cref="Insecure.InsecureCleartextKeyMaterial"/>.</summary>
    internal byte[] ExportPlaintextKeyMaterial(uint version)
    {
        ThrowIfDisposed();
        var key = Find(version) ?? throw new InvalidOperationException($"Keyset '{Name}' has no version {version}.");
        return key.Material?.ToArray() ?? throw new InvalidOperationException($"Version {version} of keyset '{Name}' is destroyed.");
    }

    internal DataKey? Find(uint version) => version >= 1 && version <= _keys.Length ? _keys[version - 1] : null;

    internal IReadOnlyList<DataKey> Keys => _keys;

    /// <summary>Zeroes every key version held by this keyset.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            foreach (var key in _keys)
            {
                key.Dispose();
            }
        }
    }

    /// <summary>Name, id and versions; never key material.</summary>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"Keyset '{Name}' (id {Id:x8}, primary v{PrimaryVersion}, {_keys.Length} version(s))");

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    internal static SecretBytes NewKeyMaterial() => SecretBytes.Random(DataKey.Size);
}
