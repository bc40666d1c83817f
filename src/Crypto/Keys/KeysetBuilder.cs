using System.Security.Cryptography;
using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.Keys;

/// <summary>
/// Makes and changes keysets: new keysets, new versions (rotation), decrypt-only and destroyed versions.
/// <see cref="Build"/> gives an immutable <see cref="Keyset"/>; the builder keeps no reference to it.
/// Not thread-safe; use one builder per change.
/// </summary>
internal sealed class KeysetBuilder
{
    private readonly List<Entry> _entries = [];
    private readonly TimeProvider _time;
    private uint _primary;

    private KeysetBuilder(string name, uint id, TimeProvider? time)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Id = id;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The keyset's name.</summary>
    public string Name { get; }

    /// <summary>The keyset's random identifier.</summary>
    public uint Id { get; }

    /// <summary>Metadata of the versions so far (never key material).</summary>
    public IReadOnlyList<KeyVersionInfo> Versions => [.. _entries.Select(e => new KeyVersionInfo(e.Version, e.Status, e.CreatedAt, e.Version == _primary))];

    /// <summary>Starts a new keyset with a random id and one fresh active primary version.</summary>
    /// <param name="name">Name of the keyset in the keyring.</param>
    /// <param name="time">Clock for the creation time; the system clock when null.</param>
    public static KeysetBuilder CreateNew(string name, TimeProvider? time = null)
    {
        var builder = new KeysetBuilder(name, NewId(), time);
        builder.AddVersion(makePrimary: true);
        return builder;
    }

    /// <summary>Starts from an existing keyset, copying its versions, to rotate or retire keys.</summary>
    /// <param name="keyset">The keyset to start from; it stays usable and unchanged.</param>
    /// <param name="time">Clock for creation times of new versions.</param>
    public static KeysetBuilder From(Keyset keyset, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(keyset);
        keyset.ThrowIfDisposed();
        var builder = new KeysetBuilder(keyset.Name, keyset.Id, time);
        foreach (var key in keyset.Keys)
        {
            builder._entries.Add(new Entry(key.Version, key.Status, key.CreatedAt, key.Material is null ? null : SecretBytes.CopyOf(key.Material.Span)));
        }

        builder._primary = keyset.PrimaryVersion;
        return builder;
    }

    internal static KeysetBuilder Restore(string name, uint id, TimeProvider? time = null) => new(name, id, time);

    /// <summary>Adds a fresh random version.</summary>
    /// <param name="makePrimary">Make it the primary at once (the old primary becomes decrypt-only); otherwise it is added active and promoted later with <see cref="SetPrimary"/>.</param>
    /// <returns>The new version number.</returns>
    public uint AddVersion(bool makePrimary = true)
    {
        var version = (uint)_entries.Count + 1;
        _entries.Add(new Entry(version, KeyStatus.Active, _time.GetUtcNow(), Keyset.NewKeyMaterial()));
        if (makePrimary)
        {
            SetPrimary(version);
        }

        return version;
    }

    /// <summary>Makes an active version the primary; the previous primary becomes decrypt-only.</summary>
    /// <param name="version">The version to promote.</param>
    public KeysetBuilder SetPrimary(uint version)
    {
        var entry = Get(version);
        if (entry.Status != KeyStatus.Active)
        {
            throw new InvalidOperationException($"Version {version} of keyset '{Name}' is {entry.Status}; only an active version can become primary.");
        }

        if (_primary != 0 && _primary != version)
        {
            var old = Get(_primary);
            old.Status = KeyStatus.DecryptOnly;
        }

        _primary = version;
        return this;
    }

    /// <summary>Stops a version from encrypting; it still decrypts. The primary cannot be retired.</summary>
    /// <param name="version">The version to retire.</param>
    public KeysetBuilder MarkDecryptOnly(uint version)
    {
        var entry = Get(version);
        if (version == _primary)
        {
            throw new InvalidOperationException($"Version {version} is the primary of keyset '{Name}'; promote another version first.");
        }

        if (entry.Status == KeyStatus.Destroyed)
        {
            throw new InvalidOperationException($"Version {version} of keyset '{Name}' is destroyed.");
        }

        entry.Status = KeyStatus.DecryptOnly;
        return this;
    }

    /// <summary>
    /// Destroys a version: its material is zeroed and dropped, so data under it can never be decrypted again.
    /// The primary cannot be destroyed.
    /// </summary>
    /// <param name="version">The version to destroy.</param>
    public KeysetBuilder Destroy(uint version)
    {
        var entry = Get(version);
        if (version == _primary)
        {
            throw new InvalidOperationException($"Version {version} is the primary of keyset '{Name}'; promote another version before destroying it.");
        }

        entry.Material?.Dispose();
        entry.Material = null;
        entry.Status = KeyStatus.Destroyed;
        return this;
    }

    internal KeysetBuilder AddExisting(uint version, KeyStatus status, DateTimeOffset createdAt, SecretBytes? material, bool primary)
    {
        if (version != (uint)_entries.Count + 1)
        {
            throw new InvalidOperationException($"Keyset '{Name}': versions must be consecutive from 1; got {version} after {_entries.Count}.");
        }

        _entries.Add(new Entry(version, status, createdAt, status == KeyStatus.Destroyed ? null : material));
        if (primary)
        {
            _primary = version;
        }

        return this;
    }

    /// <summary>Builds the immutable keyset. The builder's key copies move into it.</summary>
    public Keyset Build()
    {
        if (_primary == 0)
        {
            throw new InvalidOperationException($"Keyset '{Name}' has no primary version.");
        }

        if (Get(_primary).Status != KeyStatus.Active)
        {
            throw new InvalidOperationException($"The primary version {_primary} of keyset '{Name}' is not active.");
        }

        var keys = _entries.Select(e => new DataKey(e.Version, e.Status, e.CreatedAt, e.Status == KeyStatus.Destroyed ? null : e.Material)).ToArray();
        foreach (var entry in _entries)
        {
            entry.Material = null; // ownership moved to the keyset
        }

        _entries.Clear();
        return new Keyset(Name, Id, _primary, keys);
    }

    private Entry Get(uint version) =>
        version >= 1 && version <= _entries.Count ? _entries[(int)version - 1] : throw new InvalidOperationException($"Keyset '{Name}' has no version {version}.");

    private static uint NewId()
    {
        Span<byte> bytes = stackalloc byte[4];
        uint id;
        do
        {
            RandomNumberGenerator.Fill(bytes);
            id = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
        }
        while (id == 0);
        return id;
    }

    private sealed class Entry(uint version, KeyStatus status, DateTimeOffset createdAt, SecretBytes? material)
    {
        public uint Version { get; } = version;

        public KeyStatus Status { get; set; } = status;

        public DateTimeOffset CreatedAt { get; } = createdAt;

        public SecretBytes? Material { get; set; } = material;
    }
}
