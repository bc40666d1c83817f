using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CrmSecurity.Crypto.Providers;

/// <summary>
/// What happened to the keyring's keys over their life that the keyring file itself cannot say: the backups taken of it
/// (<c>keys backup</c>) and the key versions destroyed (<c>keys destroy</c>). A backup taken before a destroy still holds
/// the destroyed key, so the destroy flags it stale (delete it), and a restore of it destroys that version again.
/// Kept beside the keyring as <c>NAME.lifecycle.json</c> (no key material; written atomically).
/// </summary>
internal sealed class KeyLifecycleLedger
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private KeyLifecycleLedger(string path, Document document)
    {
        Path = path;
        Contents = document;
    }

    /// <summary>The ledger file.</summary>
    public string Path { get; }

    /// <summary>Backups recorded, oldest first.</summary>
    public IReadOnlyList<BackupEntry> Backups => Contents.Backups;

    /// <summary>Versions destroyed, oldest first.</summary>
    public IReadOnlyList<DestroyedEntry> Destroyed => Contents.Destroyed;

    private Document Contents { get; }

    /// <summary>The ledger file of a keyring: <c>keyring.json</c> -> <c>keyring.lifecycle.json</c>.</summary>
    public static string PathFor(string keyringPath) => System.IO.Path.ChangeExtension(keyringPath, ".lifecycle.json");

    /// <summary>Reads the keyring's ledger (empty when there is none yet).</summary>
    /// <exception cref="KeyManagementException">The file exists but is not a ledger.</exception>
    public static KeyLifecycleLedger Read(string keyringPath)
    {
        var path = PathFor(keyringPath);
        if (!File.Exists(path))
        {
            return new KeyLifecycleLedger(path, new Document());
        }

        try
        {
            return new KeyLifecycleLedger(path, JsonSerializer.Deserialize<Document>(File.ReadAllBytes(path), Json) ?? new Document());
        }
        catch (JsonException e)
        {
            throw new KeyManagementException($"The key lifecycle ledger '{path}' is not valid JSON ({e.Message}); fix or remove it.", e);
        }
    }

    /// <summary>The SHA-256 of a backup file's content, as lower-case hex: how a backup is recognised wherever it was copied to.</summary>
    public static string Fingerprint(ReadOnlySpan<byte> backup) => Convert.ToHexStringLower(SHA256.HashData(backup));

    /// <summary>Records a backup just written.</summary>
    public void RecordBackup(string backupPath, DateTimeOffset createdAt, ReadOnlySpan<byte> content)
    {
        Contents.Backups.Add(new BackupEntry { Path = backupPath, CreatedAt = createdAt, Sha256 = Fingerprint(content) });
        Save();
    }

    /// <summary>
    /// Records a destroyed version and flags every backup taken before <paramref name="at"/> stale: each still holds the
    /// destroyed key. Returns the backups newly flagged.
    /// </summary>
    public IReadOnlyList<BackupEntry> RecordDestroy(string keyset, uint keysetId, uint version, DateTimeOffset at)
    {
        Contents.Destroyed.Add(new DestroyedEntry { Keyset = keyset, KeysetId = keysetId, Version = version, At = at });
        var flagged = new List<BackupEntry>();
        foreach (var backup in Contents.Backups.Where(b => b.CreatedAt <= at))
        {
            backup.StaleBecause ??= [];
            backup.StaleBecause.Add($"{keyset} v{version} destroyed {at.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC");
            flagged.Add(backup);
        }

        Save();
        return flagged;
    }

    /// <summary>The recorded backup with this content, if any.</summary>
    public BackupEntry? FindBackup(ReadOnlySpan<byte> content)
    {
        var fingerprint = Fingerprint(content);
        return Contents.Backups.LastOrDefault(b => b.Sha256 == fingerprint);
    }

    private void Save() => AtomicFile.Write(Path, JsonSerializer.SerializeToUtf8Bytes(Contents, Json));

    /// <summary>One backup taken with <c>keys backup</c>.</summary>
    internal sealed class BackupEntry
    {
        /// <summary>Where it was written.</summary>
        public string? Path { get; set; }

        /// <summary>When it was taken.</summary>
        public DateTimeOffset CreatedAt { get; set; }

        /// <summary>SHA-256 of its content.</summary>
        public string? Sha256 { get; set; }

        /// <summary>Why it is stale (each destroy after it); null while it is not.</summary>
        public List<string>? StaleBecause { get; set; }

        /// <summary>Whether a destroy made it stale.</summary>
        [JsonIgnore]
        public bool IsStale => StaleBecause is { Count: > 0 };
    }

    /// <summary>One version destroyed with <c>keys destroy</c>.</summary>
    internal sealed class DestroyedEntry
    {
        /// <summary>Keyset name.</summary>
        public string? Keyset { get; set; }

        /// <summary>Keyset id (as in the keyring and every ciphertext).</summary>
        public uint KeysetId { get; set; }

        /// <summary>The version.</summary>
        public uint Version { get; set; }

        /// <summary>When it was destroyed.</summary>
        public DateTimeOffset At { get; set; }
    }

    private sealed class Document
    {
        public List<BackupEntry> Backups { get; set; } = [];

        public List<DestroyedEntry> Destroyed { get; set; } = [];
    }
}
