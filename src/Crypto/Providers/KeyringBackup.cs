using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Primitives;
using CrmSecurity.Crypto.Subjects;

namespace CrmSecurity.Crypto.Providers;

/// <summary>
/// Encrypted backups of the keys: the keyring and the subject-key store. A backup must restore on a fresh machine
/// where the original KEK (master key or HSM) may be gone, so it is encrypted under a key derived from a
/// passphrase, not under the KEK: PBKDF2-HMAC-SHA-256 (600,000 iterations, 16-byte random salt; NIST SP 800-132,
/// OWASP 2023) gives an AES-256-GCM key; the GCM associated data is the envelope's header fields, so none of them
/// can be changed. Subject keys stay wrapped under the <c>subjects</c> keyset inside it, as they are in the store.
/// </summary>
internal static class KeyringBackup
{
    /// <summary>Format name written in new backups (keyring, subject-key store, creation time).</summary>
    public const string Format = "crm-security-keyring-backup/2";

    /// <summary>The first format (keyring only), still read.</summary>
    public const string KeyringOnlyFormat = "crm-security-keyring-backup/1";

    /// <summary>PBKDF2 iterations used for new backups.</summary>
    public const int Iterations = 600_000;

    /// <summary>Shortest passphrase accepted.</summary>
    public const int MinimumPassphraseLength = 16;

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Encrypts every keyset of <paramref name="keyring"/> (key material included) under <paramref name="passphrase"/>.</summary>
    /// <param name="keyring">The keyring to back up.</param>
    /// <param name="passphrase">At least <see cref="MinimumPassphraseLength"/> characters; keep it apart from the backup.</param>
    /// <returns>The backup file's content (JSON).</returns>
    public static byte[] Create(Keyring keyring, string passphrase) => Create(keyring, [], passphrase, Iterations, DateTimeOffset.UtcNow);

    /// <summary>
    /// Encrypts every keyset of <paramref name="keyring"/> and every record of the subject-key store (keys still
    /// wrapped under the <c>subjects</c> keyset, tombstones included) under <paramref name="passphrase"/>.
    /// </summary>
    /// <param name="keyring">The keyring to back up.</param>
    /// <param name="subjectKeys">The subject-key store's records (<see cref="Subjects.SubjectKeyStore.ExportAsync"/>).</param>
    /// <param name="passphrase">At least <see cref="MinimumPassphraseLength"/> characters; keep it apart from the backup.</param>
    /// <param name="createdAt">When the backup was taken (recorded in it, so a restore can say which shreds came after).</param>
    /// <returns>The backup file's content (JSON).</returns>
    public static byte[] Create(Keyring keyring, IReadOnlyCollection<SubjectKeyRecord> subjectKeys, string passphrase, DateTimeOffset createdAt) =>
        Create(keyring, subjectKeys, passphrase, Iterations, createdAt);

    internal static byte[] Create(Keyring keyring, string passphrase, int iterations) => Create(keyring, [], passphrase, iterations, DateTimeOffset.UtcNow);

    internal static byte[] Create(Keyring keyring, IReadOnlyCollection<SubjectKeyRecord> subjectKeys, string passphrase, int iterations, DateTimeOffset createdAt)
    {
        ArgumentNullException.ThrowIfNull(keyring);
        ArgumentNullException.ThrowIfNull(subjectKeys);
        CheckPassphrase(passphrase);
        var payload = new Payload
        {
            CreatedAt = createdAt,
            Keysets = [.. keyring.Keysets.OrderBy(k => k.Name, StringComparer.Ordinal).Select(k => new PayloadKeyset
            {
                Name = k.Name,
                Id = k.Id,
                Primary = k.PrimaryVersion,
                Versions = [.. k.Keys.Select(v => new PayloadVersion
                {
                    Version = v.Version,
                    Status = v.Status,
                    Created = v.CreatedAt,
                    Key = v.Material is null ? null : Convert.ToBase64String(v.Material.Span),
                })],
            })],
            SubjectKeys = [.. subjectKeys.Select(r => new PayloadSubjectKey
            {
                Tenant = r.Tenant,
                Subject = r.SubjectId,
                KeysetId = r.KeysetId,
                Wrapped = r.WrappedKey is null ? null : Convert.ToBase64String(r.WrappedKey),
                Created = r.CreatedAt,
                Shredded = r.ShreddedAt,
            })],
        };
        var plaintext = JsonSerializer.SerializeToUtf8Bytes(payload, Json);
        var salt = RandomNumberGenerator.GetBytes(16);
        var nonce = RandomNumberGenerator.GetBytes(12);
        var envelope = new Envelope { Format = Format, Kdf = "PBKDF2-HMAC-SHA256", Iterations = iterations, Salt = Convert.ToBase64String(salt), Nonce = Convert.ToBase64String(nonce) };
        var ciphertext = new byte[plaintext.Length];
        var tag = new byte[16];
        using (var key = DeriveKey(passphrase, salt, iterations))
        using (var gcm = new AesGcm(key.Span, 16))
        {
            gcm.Encrypt(nonce, plaintext, ciphertext, tag, AssociatedData(envelope));
        }

        CryptographicOperations.ZeroMemory(plaintext);
        envelope.Ciphertext = Convert.ToBase64String([.. ciphertext, .. tag]);
        return JsonSerializer.SerializeToUtf8Bytes(envelope, Json);
    }

    /// <summary>Decrypts a backup made by <see cref="Create(Keyring, string)"/> into a keyring (save it under the new machine's KEK).</summary>
    /// <param name="backup">The backup file's content.</param>
    /// <param name="passphrase">The passphrase it was made with.</param>
    /// <exception cref="KeyManagementException">Not a backup, wrong passphrase, or altered.</exception>
    public static Keyring Restore(ReadOnlySpan<byte> backup, string passphrase) => Open(backup, passphrase).Keyring;

    /// <summary>Decrypts a backup: the keyring (save it under the new machine's KEK) and the subject-key store's records.</summary>
    /// <param name="backup">The backup file's content.</param>
    /// <param name="passphrase">The passphrase it was made with.</param>
    /// <exception cref="KeyManagementException">Not a backup, wrong passphrase, or altered.</exception>
    public static KeyringBackupContents Open(ReadOnlySpan<byte> backup, string passphrase)
    {
        ArgumentNullException.ThrowIfNull(passphrase);
        Envelope envelope;
        byte[] salt, nonce, sealedBytes;
        try
        {
            envelope = JsonSerializer.Deserialize<Envelope>(backup, Json) ?? throw new KeyManagementException("The backup is empty.");
            salt = Convert.FromBase64String(envelope.Salt ?? string.Empty);
            nonce = Convert.FromBase64String(envelope.Nonce ?? string.Empty);
            sealedBytes = Convert.FromBase64String(envelope.Ciphertext ?? string.Empty);
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw new KeyManagementException($"The file is not a keyring backup ({e.Message}).", e);
        }

        if (envelope.Format is not (Format or KeyringOnlyFormat) || envelope.Kdf != "PBKDF2-HMAC-SHA256")
        {
            throw new KeyManagementException($"The backup has format '{envelope.Format}' and KDF '{envelope.Kdf}'; this build reads '{Format}' and '{KeyringOnlyFormat}' with PBKDF2-HMAC-SHA256.");
        }

        if (envelope.Iterations < 100_000 || salt.Length < 16 || nonce.Length != 12 || sealedBytes.Length < 16)
        {
            throw new KeyManagementException("The backup's parameters are invalid (too few PBKDF2 iterations, or a short salt, nonce or ciphertext).");
        }

        var plaintext = new byte[sealedBytes.Length - 16];
        try
        {
            using (var key = DeriveKey(passphrase, salt, envelope.Iterations))
            using (var gcm = new AesGcm(key.Span, 16))
            {
                try
                {
                    // NIST SP 800-38D §7.2: nothing is used unless the tag verifies.
                    gcm.Decrypt(nonce, sealedBytes.AsSpan(0, plaintext.Length), sealedBytes.AsSpan(plaintext.Length), plaintext, AssociatedData(envelope));
                }
                catch (AuthenticationTagMismatchException e)
                {
                    throw new KeyManagementException("The backup does not decrypt: wrong passphrase, or the file was altered.", e);
                }
            }

            var payload = JsonSerializer.Deserialize<Payload>(plaintext, Json) ?? throw new KeyManagementException("The backup holds no keysets.");
            var subjectKeys = (payload.SubjectKeys ?? []).Select(ToRecord).ToList();
            return new KeyringBackupContents(Keyring.Of((payload.Keysets ?? []).Select(ToKeyset).ToList()), subjectKeys, payload.CreatedAt) { Content = backup.ToArray() };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    private static Keyset ToKeyset(PayloadKeyset entry)
    {
        var builder = KeysetBuilder.Restore(entry.Name!, entry.Id);
        foreach (var version in (entry.Versions ?? []).OrderBy(v => v.Version))
        {
            SecretBytes? material = null;
            if (version.Key is not null)
            {
                var bytes = Convert.FromBase64String(version.Key);
                material = SecretBytes.CopyOf(bytes);
                CryptographicOperations.ZeroMemory(bytes);
            }

            builder.AddExisting(version.Version, version.Status, version.Created, material, version.Version == entry.Primary);
        }

        return builder.Build();
    }

    private static SubjectKeyRecord ToRecord(PayloadSubjectKey entry) => new()
    {
        Tenant = entry.Tenant ?? throw new KeyManagementException("The backup has a subject key without a tenant."),
        SubjectId = entry.Subject ?? throw new KeyManagementException("The backup has a subject key without a subject id."),
        KeysetId = entry.KeysetId,
        WrappedKey = entry.Wrapped is null ? null : Convert.FromBase64String(entry.Wrapped),
        CreatedAt = entry.Created,
        ShreddedAt = entry.Shredded,
    };

    private static void CheckPassphrase(string passphrase)
    {
        ArgumentNullException.ThrowIfNull(passphrase);
        if (passphrase.Length < MinimumPassphraseLength)
        {
            throw new KeyManagementException($"The backup passphrase must have at least {MinimumPassphraseLength} characters.");
        }
    }

    private static SecretBytes DeriveKey(string passphrase, byte[] salt, int iterations) =>
        SecretBytes.Create(32, output => Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(passphrase), salt, output, iterations, HashAlgorithmName.SHA256));

    private static byte[] AssociatedData(Envelope envelope) =>
        Encoding.UTF8.GetBytes($"{envelope.Format}\n{envelope.Kdf}\n{envelope.Iterations}\n{envelope.Salt}\n{envelope.Nonce}");

    internal sealed class Envelope
    {
        public string? Format { get; set; }

        public string? Kdf { get; set; }

        public int Iterations { get; set; }

        public string? Salt { get; set; }

        public string? Nonce { get; set; }

        public string? Ciphertext { get; set; }
    }

    internal sealed class Payload
    {
        public DateTimeOffset? CreatedAt { get; set; }

        public List<PayloadKeyset>? Keysets { get; set; }

        public List<PayloadSubjectKey>? SubjectKeys { get; set; }
    }

    internal sealed class PayloadSubjectKey
    {
        public string? Tenant { get; set; }

        public string? Subject { get; set; }

        public long KeysetId { get; set; }

        public string? Wrapped { get; set; }

        public DateTimeOffset Created { get; set; }

        public DateTimeOffset? Shredded { get; set; }
    }

    internal sealed class PayloadKeyset
    {
        public string? Name { get; set; }

        public uint Id { get; set; }

        public uint Primary { get; set; }

        public List<PayloadVersion>? Versions { get; set; }
    }

    internal sealed class PayloadVersion
    {
        public uint Version { get; set; }

        public KeyStatus Status { get; set; }

        public DateTimeOffset Created { get; set; }

        public string? Key { get; set; }
    }
}

/// <summary>What a backup holds: the keyring and the subject-key store's records (keys wrapped under the keyring's <c>subjects</c> keyset).</summary>
/// <param name="Keyring">The keyring (the caller owns it).</param>
/// <param name="SubjectKeys">The subject-key store's records, tombstones included; empty for a keyring-only backup.</param>
/// <param name="CreatedAt">When the backup was taken; null for backups of the first format.</param>
internal sealed record KeyringBackupContents(Keyring Keyring, IReadOnlyList<SubjectKeyRecord> SubjectKeys, DateTimeOffset? CreatedAt)
{
    /// <summary>The backup file's content as read (encrypted), so the lifecycle ledger can recognise it.</summary>
    public byte[] Content { get; init; } = [];
}
