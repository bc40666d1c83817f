using System.Buffers.Binary;
using System.Security.Cryptography;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Primitives;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Crypto.Subjects;

/// <summary>
/// Per-data-subject keys for crypto-shredding. Each subject (per tenant) gets a random 256-bit key, kept in
/// <c>crypto_subject_keys</c> wrapped by the keyring's <c>fields</c> keyset (AES-256-GCM, bound to tenant
/// and subject id, so a wrapped key copied to another subject fails). Shredding deletes the wrapped key and
/// leaves a tombstone: every field encrypted under it becomes unreadable, in every copy of the data.
/// </summary>
public sealed class SubjectKeyStore
{
    private readonly Func<CryptoDbContext> _contexts;
    private readonly Keyset _wrapping;
    private readonly ICryptoEventSink _events;
    private readonly TimeProvider _time;
    private readonly Lazy<FieldEncryptor> _wrapper;

    /// <summary>Creates the store.</summary>
    /// <param name="contexts">Makes a <see cref="CryptoDbContext"/> on the module's database (the caller owns it; it is disposed after each call).</param>
    /// <param name="fields">The keyring's <c>fields</c> keyset, which wraps subject keys.</param>
    /// <param name="events">Where shred events go.</param>
    /// <param name="time">Clock.</param>
    public SubjectKeyStore(Func<CryptoDbContext> contexts, Keyset fields, ICryptoEventSink events, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(contexts);
        ArgumentNullException.ThrowIfNull(fields);
        ArgumentNullException.ThrowIfNull(events);
        _contexts = contexts;
        _wrapping = fields;
        _events = events;
        _time = time ?? TimeProvider.System;
        _wrapper = new Lazy<FieldEncryptor>(() => _wrapping.CreateFieldEncryptor(new FieldContext("crypto", "crypto_subject_keys", "wrapped_key")));
    }

    /// <summary>The subject's key as a one-version keyset, made on first use.</summary>
    /// <param name="tenant">Tenant.</param>
    /// <param name="subjectId">Data subject id.</param>
    /// <param name="cancellationToken">Cancels the database calls.</param>
    /// <exception cref="FieldDecryptionException">With <see cref="DecryptFailureReason.SubjectShredded"/> when it was shredded.</exception>
    public async Task<Keyset> GetOrCreateAsync(string tenant, string subjectId, CancellationToken cancellationToken = default)
    {
        if (await FindAsync(tenant, subjectId, cancellationToken) is { } existing)
        {
            return existing;
        }

        var keyset = KeysetBuilder.CreateNew("subject", _time).Build();
        await using var context = _contexts();
        context.SubjectKeys.Add(new SubjectKeyRecord
        {
            Tenant = tenant,
            SubjectId = subjectId,
            KeysetId = keyset.Id,
            WrappedKey = Wrap(tenant, subjectId, keyset),
            CreatedAt = _time.GetUtcNow(),
        });
        try
        {
            await context.SaveChangesAsync(cancellationToken);
            return keyset;
        }
        catch (DbUpdateException)
        {
            // Another writer made this subject's key first: use theirs.
            keyset.Dispose();
            return await FindAsync(tenant, subjectId, cancellationToken)
                ?? throw new InvalidOperationException($"The key of data subject '{subjectId}' could neither be created nor read.");
        }
    }

    /// <summary>Synchronous <see cref="GetOrCreateAsync"/>, for EF Core's synchronous SaveChanges.</summary>
    /// <param name="tenant">Tenant.</param>
    /// <param name="subjectId">Data subject id.</param>
    public Keyset GetOrCreate(string tenant, string subjectId)
    {
        if (Find(tenant, subjectId) is { } existing)
        {
            return existing;
        }

        var keyset = KeysetBuilder.CreateNew("subject", _time).Build();
        using var context = _contexts();
        context.SubjectKeys.Add(new SubjectKeyRecord
        {
            Tenant = tenant,
            SubjectId = subjectId,
            KeysetId = keyset.Id,
            WrappedKey = Wrap(tenant, subjectId, keyset),
            CreatedAt = _time.GetUtcNow(),
        });
        try
        {
            context.SaveChanges();
            return keyset;
        }
        catch (DbUpdateException)
        {
            keyset.Dispose();
            return Find(tenant, subjectId) ?? throw new InvalidOperationException($"The key of data subject '{subjectId}' could neither be created nor read.");
        }
    }

    /// <summary>Synchronous <see cref="FindAsync"/>, for EF Core materialization (which is synchronous).</summary>
    /// <param name="tenant">Tenant.</param>
    /// <param name="subjectId">Data subject id.</param>
    public Keyset? Find(string tenant, string subjectId)
    {
        using var context = _contexts();
        var record = context.SubjectKeys.AsNoTracking().SingleOrDefault(k => k.Tenant == tenant && k.SubjectId == subjectId);
        return record is null ? null : Unwrap(record);
    }

    /// <summary>The subject's key, or null when it never had one.</summary>
    /// <param name="tenant">Tenant.</param>
    /// <param name="subjectId">Data subject id.</param>
    /// <param name="cancellationToken">Cancels the database call.</param>
    /// <exception cref="FieldDecryptionException">With <see cref="DecryptFailureReason.SubjectShredded"/> when it was shredded.</exception>
    public async Task<Keyset?> FindAsync(string tenant, string subjectId, CancellationToken cancellationToken = default)
    {
        await using var context = _contexts();
        var record = await context.SubjectKeys.AsNoTracking().SingleOrDefaultAsync(k => k.Tenant == tenant && k.SubjectId == subjectId, cancellationToken);
        return record is null ? null : Unwrap(record);
    }

    /// <summary>
    /// Shreds the subject's key: the wrapped key is deleted (a tombstone records when), and a
    /// <c>admin_change</c> access event with details <c>crypto_shred</c> is written. Purging blind indexes is
    /// the caller's part (<see cref="EntityFramework.FieldEncryptionDbContextExtensions.ShredDataSubjectAsync"/> does both).
    /// </summary>
    /// <param name="tenant">Tenant.</param>
    /// <param name="subjectId">Data subject id.</param>
    /// <param name="actor">Who asked for it (user id or operator account), for the audit event.</param>
    /// <param name="cancellationToken">Cancels the database call.</param>
    /// <returns>True when a live key was destroyed; false when there was none or it was already shredded.</returns>
    public async Task<bool> ShredAsync(string tenant, string subjectId, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        await using var context = _contexts();
        var record = await context.SubjectKeys.SingleOrDefaultAsync(k => k.Tenant == tenant && k.SubjectId == subjectId, cancellationToken);
        var destroyed = record is { WrappedKey: not null };
        if (record is null)
        {
            // A tombstone even for a subject that never had a key, so no key can be made for it later by mistake.
            context.SubjectKeys.Add(new SubjectKeyRecord { Tenant = tenant, SubjectId = subjectId, CreatedAt = _time.GetUtcNow(), ShreddedAt = _time.GetUtcNow() });
        }
        else if (record.WrappedKey is not null)
        {
            CryptographicOperations.ZeroMemory(record.WrappedKey);
            record.WrappedKey = null;
            record.ShreddedAt = _time.GetUtcNow();
        }

        await context.SaveChangesAsync(cancellationToken);
        await _events.WriteAsync(
            new CryptoAccessEvent(_time.GetUtcNow(), actor, "admin_change", "success")
            {
                Tenant = tenant,
                Entity = "data_subject",
                RecordId = subjectId,
                Privilege = "crypto_shred",
                Details = destroyed ? "crypto_shred: subject key destroyed" : "crypto_shred: no live key (tombstone recorded)",
            },
            cancellationToken);
        return destroyed;
    }

    /// <summary>
    /// Rewraps every live subject key that is not under the <c>fields</c> keyset's primary version (after
    /// <c>keys rotate</c>), so old versions stop being needed for subject keys. Each key is rewritten only if its
    /// wrapped value is still the one read (a concurrent shred wins); safe to stop and run again.
    /// </summary>
    /// <param name="cancellationToken">Stops between keys.</param>
    /// <returns>How many keys were rewrapped.</returns>
    public async Task<int> RewrapAsync(CancellationToken cancellationToken = default)
    {
        var primary = _wrapping.PrimaryVersion;
        var rewrapped = 0;
        await using var context = _contexts();
        var records = await context.SubjectKeys.Where(k => k.WrappedKey != null).ToListAsync(cancellationToken);
        foreach (var record in records)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var info = FieldCiphertext.Inspect(record.WrappedKey);
            if (info.KeysetId == _wrapping.Id && info.KeyVersion == primary)
            {
                continue;
            }

            using var keyset = Unwrap(record);
            var old = record.WrappedKey!;
            var fresh = Wrap(record.Tenant, record.SubjectId, keyset);
            var updated = await context.SubjectKeys
                .Where(k => k.Tenant == record.Tenant && k.SubjectId == record.SubjectId && k.WrappedKey == old)
                .ExecuteUpdateAsync(setters => setters.SetProperty(k => k.WrappedKey, fresh), cancellationToken);
            rewrapped += updated;
        }

        return rewrapped;
    }

    private byte[] Wrap(string tenant, string subjectId, Keyset keyset)
    {
        var plaintext = new byte[4 + DataKey.Size];
        BinaryPrimitives.WriteUInt32BigEndian(plaintext, keyset.Id);
        keyset.Primary.Material!.Span.CopyTo(plaintext.AsSpan(4));
        try
        {
            return _wrapper.Value.Encrypt(plaintext, RowId(tenant, subjectId));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    private Keyset Unwrap(SubjectKeyRecord record)
    {
        if (record.WrappedKey is null)
        {
            throw new FieldDecryptionException(DecryptFailureReason.SubjectShredded);
        }

        var plaintext = _wrapper.Value.Decrypt(record.WrappedKey, RowId(record.Tenant, record.SubjectId));
        try
        {
            var id = BinaryPrimitives.ReadUInt32BigEndian(plaintext);
            if (id != (uint)record.KeysetId)
            {
                throw new FieldDecryptionException(DecryptFailureReason.AuthenticationFailed, "The subject key record's keyset id was altered.");
            }

            return KeysetBuilder.Restore("subject", id)
                .AddExisting(1, KeyStatus.Active, record.CreatedAt, SecretBytes.CopyOf(plaintext.AsSpan(4)), primary: true)
                .Build();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    // Tenant and subject both bound: length-prefixed so ("a", "bc") and ("ab", "c") differ.
    private static string RowId(string tenant, string subjectId) => $"{tenant.Length}:{tenant}/{subjectId}";
}
