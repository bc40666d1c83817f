using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.Providers;

/// <summary>
/// The keysets of one installation, kept on disk as a keyring file in which every data key is wrapped by a
/// KEK (<see cref="IKeyEncryptionKey"/>). Immutable: changes give a new keyring, saved atomically.
/// </summary>
/// <remarks>
/// Each wrapped entry is <c>KWP(KEK, keyset-id(4, BE) || version(4, BE) || key(32))</c>, so an entry moved to
/// another keyset or version in the file is refused when it is unwrapped.
/// </remarks>
public sealed class Keyring : IDisposable
{
    /// <summary>Format name written in keyring files.</summary>
    public const string Format = "crm-security-keyring/1";

    /// <summary>The keyset that encrypts fields.</summary>
    public const string FieldsKeyset = "fields";

    /// <summary>The keyset that wraps data-subject keys in the subject-key store (its own keyset, so rotating <c>fields</c> never touches subject keys).</summary>
    public const string SubjectsKeyset = "subjects";

    /// <summary>The keyset blind-index keys are derived from.</summary>
    public const string BlindIndexKeyset = "blind-index";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };

    private readonly Dictionary<string, Keyset> _keysets;

    private Keyring(IEnumerable<Keyset> keysets) => _keysets = keysets.ToDictionary(k => k.Name, StringComparer.Ordinal);

    /// <summary>Every keyset, by name.</summary>
    public IReadOnlyCollection<Keyset> Keysets => _keysets.Values;

    /// <summary>A new keyring with fresh <c>fields</c>, <c>blind-index</c> and <c>subjects</c> keysets.</summary>
    /// <param name="time">Clock for creation times.</param>
    public static Keyring CreateNew(TimeProvider? time = null) =>
        new([KeysetBuilder.CreateNew(FieldsKeyset, time).Build(), KeysetBuilder.CreateNew(BlindIndexKeyset, time).Build(), KeysetBuilder.CreateNew(SubjectsKeyset, time).Build()]);

    /// <summary>A keyring of the given keysets (it takes ownership of them).</summary>
    /// <param name="keysets">The keysets; names must be unique.</param>
    public static Keyring Of(IEnumerable<Keyset> keysets) => new(keysets);

    /// <summary>The keyset called <paramref name="name"/>.</summary>
    /// <param name="name">Keyset name.</param>
    /// <exception cref="KeyManagementException">There is no such keyset.</exception>
    public Keyset Get(string name) =>
        _keysets.TryGetValue(name, out var keyset) ? keyset : throw new KeyManagementException($"The keyring has no keyset named '{name}'. Keysets: {string.Join(", ", _keysets.Keys)}.");

    /// <summary>A new keyring with <paramref name="keyset"/> in place of the keyset of the same name. This keyring keeps the old one.</summary>
    /// <param name="keyset">The replacement (ownership moves to the new keyring).</param>
    public Keyring With(Keyset keyset)
    {
        ArgumentNullException.ThrowIfNull(keyset);
        var copies = _keysets.Values.Where(k => k.Name != keyset.Name).Select(k => KeysetBuilder.From(k).Build()).Append(keyset);
        return new Keyring(copies);
    }

    /// <summary>Loads a keyring file, unwrapping every key with <paramref name="kek"/>.</summary>
    /// <param name="path">The keyring file.</param>
    /// <param name="kek">The KEK it was saved under.</param>
    /// <exception cref="KeyManagementException">Missing, unreadable, malformed, made under another KEK, or altered; the message says which.</exception>
    public static Keyring Load(string path, IKeyEncryptionKey kek)
    {
        ArgumentNullException.ThrowIfNull(kek);
        byte[] content;
        try
        {
            content = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new KeyManagementException($"The keyring file '{path}' does not exist. Create one with `keys init`, or restore a backup with `keys restore`.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KeyManagementException($"The keyring file '{path}' cannot be read: {e.Message}", e);
        }

        return Load(content, path, kek);
    }

    /// <summary>
    /// Loads a keyring from the bytes of its file, read once (so what is checked is what is used: a reload reads, verifies,
    /// then swaps). <paramref name="path"/> only names the file in messages.
    /// </summary>
    internal static Keyring Load(ReadOnlySpan<byte> content, string path, IKeyEncryptionKey kek)
    {
        ArgumentNullException.ThrowIfNull(kek);
        KeyringDocument document;
        try
        {
            document = JsonSerializer.Deserialize<KeyringDocument>(content, Json) ?? throw new KeyManagementException($"The keyring file '{path}' is empty.");
        }
        catch (JsonException e)
        {
            throw new KeyManagementException($"The keyring file '{path}' is not a valid keyring ({e.Message}).", e);
        }

        if (document.Format != Format)
        {
            throw new KeyManagementException($"The keyring file '{path}' has format '{document.Format}'; this build reads '{Format}'.");
        }

        if (!string.Equals(document.Kek, kek.KeyId, StringComparison.Ordinal))
        {
            throw new KeyManagementException($"The keyring file '{path}' is wrapped under the key-encryption key '{document.Kek}', but the configured one is '{kek.KeyId}'. Configure the right master key, or rewrap the keyring with `keys rewrap`.");
        }

        var keysets = new List<Keyset>();
        try
        {
            foreach (var entry in document.Keysets ?? [])
            {
                keysets.Add(Unwrap(entry, kek, path));
            }

            return new Keyring(keysets);
        }
        catch
        {
            keysets.ForEach(k => k.Dispose());
            throw;
        }
    }

    /// <summary>Saves the keyring to <paramref name="path"/> with every key wrapped by <paramref name="kek"/>; the file is replaced atomically.</summary>
    /// <param name="path">The keyring file.</param>
    /// <param name="kek">The KEK to wrap under (a new one rewraps the keyring).</param>
    public void Save(string path, IKeyEncryptionKey kek)
    {
        ArgumentNullException.ThrowIfNull(kek);
        var document = new KeyringDocument
        {
            Format = Format,
            Kek = kek.KeyId,
            Keysets = [.. _keysets.Values.OrderBy(k => k.Name, StringComparer.Ordinal).Select(k => Wrap(k, kek))],
        };
        AtomicFile.Write(path, JsonSerializer.SerializeToUtf8Bytes(document, Json));
    }

    /// <summary>Zeroes every key.</summary>
    public void Dispose()
    {
        foreach (var keyset in _keysets.Values)
        {
            keyset.Dispose();
        }
    }

    /// <summary>Keyset names only.</summary>
    public override string ToString() => $"Keyring ({string.Join(", ", _keysets.Keys)})";

    internal static byte[] Binding(uint keysetId, uint version, ReadOnlySpan<byte> key)
    {
        var bound = new byte[8 + key.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bound, keysetId);
        BinaryPrimitives.WriteUInt32BigEndian(bound.AsSpan(4), version);
        key.CopyTo(bound.AsSpan(8));
        return bound;
    }

    private static KeysetDocument Wrap(Keyset keyset, IKeyEncryptionKey kek) => new()
    {
        Name = keyset.Name,
        Id = keyset.Id,
        Primary = keyset.PrimaryVersion,
        Versions = [.. keyset.Keys.Select(key =>
        {
            string? wrapped = null;
            if (key.Material is { } material)
            {
                var bound = Binding(keyset.Id, key.Version, material.Span);
                try
                {
                    wrapped = Convert.ToBase64String(kek.WrapKey(bound));
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(bound);
                }
            }

            return new VersionDocument { Version = key.Version, Status = key.Status, Created = key.CreatedAt, Wrapped = wrapped };
        })],
    };

    private static Keyset Unwrap(KeysetDocument entry, IKeyEncryptionKey kek, string path)
    {
        var builder = KeysetBuilder.Restore(entry.Name ?? throw new KeyManagementException($"The keyring file '{path}' has a keyset without a name."), entry.Id);
        foreach (var version in (entry.Versions ?? []).OrderBy(v => v.Version))
        {
            SecretBytes? material = null;
            if (version.Status != KeyStatus.Destroyed)
            {
                if (version.Wrapped is null)
                {
                    throw new KeyManagementException($"Keyset '{entry.Name}' version {version.Version} in '{path}' has no key but is not destroyed.");
                }

                byte[] bound;
                try
                {
                    bound = kek.UnwrapKey(Convert.FromBase64String(version.Wrapped));
                }
                catch (FormatException e)
                {
                    throw new KeyManagementException(string.Create(CultureInfo.InvariantCulture, $"Keyset '{entry.Name}' version {version.Version} in '{path}' holds a wrapped key that is not base64: the file was altered or cut off."), e);
                }

                try
                {
                    // The binding stops an entry from being moved to another keyset or version in the file.
                    if (bound.Length != 8 + DataKey.Size
                        || BinaryPrimitives.ReadUInt32BigEndian(bound) != entry.Id
                        || BinaryPrimitives.ReadUInt32BigEndian(bound.AsSpan(4)) != version.Version)
                    {
                        throw new KeyManagementException(string.Create(CultureInfo.InvariantCulture, $"Keyset '{entry.Name}' version {version.Version} in '{path}' holds a key wrapped for another keyset or version: the file was altered."));
                    }

                    material = SecretBytes.CopyOf(bound.AsSpan(8));
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(bound);
                }
            }

            builder.AddExisting(version.Version, version.Status, version.Created, material, version.Version == entry.Primary);
        }

        try
        {
            return builder.Build();
        }
        catch (InvalidOperationException e)
        {
            throw new KeyManagementException($"Keyset '{entry.Name}' in '{path}' is inconsistent: {e.Message}", e);
        }
    }

    internal sealed class KeyringDocument
    {
        public string? Format { get; set; }

        public string? Kek { get; set; }

        public List<KeysetDocument>? Keysets { get; set; }
    }

    internal sealed class KeysetDocument
    {
        public string? Name { get; set; }

        public uint Id { get; set; }

        public uint Primary { get; set; }

        public List<VersionDocument>? Versions { get; set; }
    }

    internal sealed class VersionDocument
    {
        public uint Version { get; set; }

        public KeyStatus Status { get; set; }

        public DateTimeOffset Created { get; set; }

        public string? Wrapped { get; set; }
    }
}
