using System.Buffers.Binary;
using System.Security.Cryptography;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Primitives;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Crypto.Subjects;

/// <summary>
/// Per-data-subject keys for crypto-shredding. Each subject (per tenant) gets a random 256-bit key, kept in the
/// subject-key store (<see cref="SubjectKeyDbContext"/>, beside the keyring, never in the data database) wrapped
/// by the keyring's <c>subjects</c> keyset (AES-256-GCM, bound to tenant and subject id, so a wrapped key copied
/// to another subject fails). Shredding deletes the wrapped key (overwritten in place on SQLite) and leaves a
/// tombstone: every field encrypted under it becomes unreadable, in every copy of the data, backups included.
/// </summary>
/// <remarks>
/// A shred is also recorded as a tombstone in the data database (<see cref="CryptoDbContext.SubjectTombstones"/>,
/// no key material) and as an access event, so that restoring an older backup of the subject-key store can
/// re-apply it (<see cref="ReapplyShredsAsync"/>).
/// </remarks>
public sealed class SubjectKeyStore
{
    private readonly Func<SubjectKeyDbContext> _keys;
    private readonly Func<CryptoDbContext>? _data;
    private readonly ICryptoEventSink _events;
    private readonly TimeProvider _time;
    private Keyset _wrapping;
    private Lazy<FieldEncryptor> _wrapper;

    /// <summary>Creates the store.</summary>
    /// <param name="keyStore">Makes a <see cref="SubjectKeyDbContext"/> on the subject-key store (disposed after each call).</param>
    /// <param name="subjects">The keyring's <c>subjects</c> keyset, which wraps subject keys.</param>
    /// <param name="events">Where shred events go.</param>
    /// <param name="dataDatabase">Makes a <see cref="CryptoDbContext"/> on the data database, where tombstones are recorded too; null to record them only in the store and the events.</param>
    /// <param name="time">Clock.</param>
    internal SubjectKeyStore(Func<SubjectKeyDbContext> keyStore, Keyset subjects, ICryptoEventSink events, Func<CryptoDbContext>? dataDatabase = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(keyStore);
        ArgumentNullException.ThrowIfNull(subjects);
        ArgumentNullException.ThrowIfNull(events);
        _keys = keyStore;
        _data = dataDatabase;
        _events = events;
        _time = time ?? TimeProvider.System;
        _wrapping = subjects;
        _wrapper = Wrapper(subjects);
    }

    /// <summary>
    /// Wraps and unwraps with a reloaded keyring's <c>subjects</c> keyset from now on (after <c>keys rotate --keyset
    /// subjects</c> on another host). Returns the previous wrapper, to be disposed once operations under it have ended.
    /// </summary>
    internal IDisposable? UseWrapping(Keyset subjects)
    {
        ArgumentNullException.ThrowIfNull(subjects);
        Volatile.Write(ref _wrapping, subjects);
        var old = Interlocked.Exchange(ref _wrapper, Wrapper(subjects));
        return old.IsValueCreated ? old.Value : null;
    }

    private static Lazy<FieldEncryptor> Wrapper(Keyset subjects) =>
        new(() => subjects.CreateFieldEncryptor(new FieldContext("crypto", "crypto_subject_keys", "wrapped_key")));

    private enum Destruction
    {
        AlreadyShredded,
        KeyDestroyed,
        TombstoneAdded,
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
        await using var context = _keys();
        context.SubjectKeys.Add(NewRecord(tenant, subjectId, keyset));
        try
        {
            await context.SaveChangesAsync(cancellationToken);
            return keyset;
        }
        catch (DbUpdateException)
        {
            // Another writer made this subject's key (or shredded it) first: use theirs.
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
        using var context = _keys();
        context.SubjectKeys.Add(NewRecord(tenant, subjectId, keyset));
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
        using var context = _keys();
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
        await using var context = _keys();
        var record = await context.SubjectKeys.AsNoTracking().SingleOrDefaultAsync(k => k.Tenant == tenant && k.SubjectId == subjectId, cancellationToken);
        return record is null ? null : Unwrap(record);
    }

    /// <summary>
    /// Shreds the subject's key. In this order: a tombstone is recorded in the data database (so a crash after it
    /// still lets <see cref="ReapplyShredsAsync"/> finish the shred); the wrapped key is deleted from the store
    /// (a tombstone records when; on SQLite its bytes are overwritten and the write-ahead log truncated); an
    /// <c>admin_change</c> access event with privilege <c>crypto_shred</c> is written. Purging blind indexes is the
    /// caller's part (<see cref="EntityFramework.FieldEncryptionDbContextExtensions.ShredDataSubjectAsync"/> does both).
    /// </summary>
    /// <param name="tenant">Tenant.</param>
    /// <param name="subjectId">Data subject id.</param>
    /// <param name="actor">Who asked for it (user id or operator account), for the audit event.</param>
    /// <param name="cancellationToken">Cancels the database call.</param>
    /// <returns>True when a live key was destroyed; false when there was none or it was already shredded.</returns>
    public async Task<bool> ShredAsync(string tenant, string subjectId, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tenant);
        ArgumentException.ThrowIfNullOrWhiteSpace(subjectId);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        var now = _time.GetUtcNow();
        await RecordInDataAsync([new ShredRecord(tenant, subjectId, now)], cancellationToken);
        var destroyed = await DestroyAsync(tenant, subjectId, now, cancellationToken) == Destruction.KeyDestroyed;
        await _events.WriteAsync(
            ShredEvent(tenant, subjectId, actor, destroyed ? "crypto_shred: subject key destroyed" : "crypto_shred: no live key (tombstone recorded)"),
            cancellationToken);
        return destroyed;
    }

    /// <summary>
    /// The shred of the encryption service: the same steps as <see cref="ShredAsync"/> (tombstone in the data database
    /// first, then the key destroyed in the store), but audited once per effect: a repeat that changes nothing writes no
    /// second event and says so. <paramref name="audit"/> adds who asked (client, address) to the event.
    /// </summary>
    internal async Task<SubjectShredOutcome> ShredOnceAsync(string tenant, string subjectId, string actor, Func<CryptoAccessEvent, CryptoAccessEvent> audit, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tenant);
        ArgumentException.ThrowIfNullOrWhiteSpace(subjectId);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        var now = _time.GetUtcNow();
        await RecordInDataAsync([new ShredRecord(tenant, subjectId, now)], cancellationToken);
        var outcome = await DestroyAsync(tenant, subjectId, now, cancellationToken) switch
        {
            Destruction.KeyDestroyed => SubjectShredOutcome.KeyDestroyed,
            Destruction.TombstoneAdded => SubjectShredOutcome.TombstoneRecorded,
            _ => SubjectShredOutcome.AlreadyShredded,
        };
        if (outcome != SubjectShredOutcome.AlreadyShredded)
        {
            await _events.WriteAsync(
                audit(ShredEvent(tenant, subjectId, actor, outcome == SubjectShredOutcome.KeyDestroyed ? "crypto_shred: subject key destroyed" : "crypto_shred: no live key (tombstone recorded)")),
                cancellationToken);
        }

        return outcome;
    }

    /// <summary>
    /// Re-applies every recorded shred to the store: after a subject-key store backup is restored, keys of subjects
    /// shredded after that backup are live again; this destroys them (and tombstones subjects the store never knew).
    /// Sources: the data database's tombstones (when configured) and <paramref name="recorded"/> (for example shreds
    /// read from the access-event log with <see cref="ShredLog.ReadAsync"/>). Tombstones the store has and the data
    /// database lacks (after a data backup was restored) are copied there. Idempotent.
    /// </summary>
    /// <param name="recorded">Further shred records (access-event logs, a backup's tombstones).</param>
    /// <param name="actor">Who runs it, for the access event written for each subject whose key is destroyed again.</param>
    /// <param name="cancellationToken">Cancels the database calls.</param>
    internal async Task<ShredReapplication> ReapplyShredsAsync(IEnumerable<ShredRecord> recorded, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        var all = new Dictionary<(string Tenant, string Subject), ShredRecord>();
        foreach (var shred in recorded.Concat(await DataTombstonesAsync(cancellationToken)))
        {
            all.TryAdd((shred.Tenant, shred.SubjectId), shred);
        }

        int destroyed = 0, added = 0;
        foreach (var shred in all.Values)
        {
            cancellationToken.ThrowIfCancellationRequested();
            switch (await DestroyAsync(shred.Tenant, shred.SubjectId, shred.ShreddedAt == DateTimeOffset.MinValue ? _time.GetUtcNow() : shred.ShreddedAt, cancellationToken))
            {
                case Destruction.KeyDestroyed:
                    destroyed++;
                    await _events.WriteAsync(ShredEvent(shred.Tenant, shred.SubjectId, actor, "crypto_shred: re-applied after a restore (restored subject key destroyed again)"), cancellationToken);
                    break;
                case Destruction.TombstoneAdded:
                    added++;
                    break;
            }
        }

        var copied = await RecordInDataAsync(await ListShreddedAsync(tenant: null, cancellationToken), cancellationToken);
        return new ShredReapplication(all.Count, destroyed, added, copied);
    }

    /// <summary>Every shredded subject the store knows (its tombstones), optionally of one tenant.</summary>
    /// <param name="tenant">Only this tenant; null for all.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    internal async Task<IReadOnlyList<ShredRecord>> ListShreddedAsync(string? tenant = null, CancellationToken cancellationToken = default)
    {
        await using var context = _keys();
        var query = context.SubjectKeys.AsNoTracking().Where(k => k.WrappedKey == null);
        if (tenant is not null)
        {
            query = query.Where(k => k.Tenant == tenant);
        }

        var rows = await query.Select(k => new { k.Tenant, k.SubjectId, k.ShreddedAt, k.CreatedAt }).ToListAsync(cancellationToken);
        return [.. rows.Select(r => new ShredRecord(r.Tenant, r.SubjectId, r.ShreddedAt ?? r.CreatedAt))];
    }

    /// <summary>Every record of the store as stored (keys still wrapped under the <c>subjects</c> keyset), for an encrypted backup.</summary>
    /// <param name="cancellationToken">Cancels the query.</param>
    internal async Task<IReadOnlyList<SubjectKeyRecord>> ExportAsync(CancellationToken cancellationToken = default)
    {
        await using var context = _keys();
        return await context.SubjectKeys.AsNoTracking().OrderBy(k => k.Tenant).ThenBy(k => k.SubjectId).ToListAsync(cancellationToken);
    }

    /// <summary>
    /// Adds a backup's records to the store. Every live key of the backup is first checked to unwrap under this
    /// store's <c>subjects</c> keyset (nothing is written otherwise). A subject the store already has keeps the
    /// store's record: a key made after the backup is not replaced, a tombstone is never replaced by a key. Run
    /// <see cref="ReapplyShredsAsync"/> afterwards for the shreds made after the backup.
    /// </summary>
    /// <param name="backup">Records from <see cref="ExportAsync"/>, as a backup holds them.</param>
    /// <param name="cancellationToken">Cancels the database calls.</param>
    /// <exception cref="FieldDecryptionException">A backup key does not unwrap (another keyring, or altered).</exception>
    internal async Task<SubjectKeyMerge> MergeAsync(IEnumerable<SubjectKeyRecord> backup, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(backup);
        var records = backup.ToList();
        foreach (var record in records.Where(r => r.WrappedKey is not null))
        {
            Unwrap(record).Dispose();
        }

        await using var context = _keys();
        var existing = (await context.SubjectKeys.AsNoTracking().Select(k => new { k.Tenant, k.SubjectId }).ToListAsync(cancellationToken))
            .Select(k => (k.Tenant, k.SubjectId)).ToHashSet();
        var added = 0;
        foreach (var record in records)
        {
            if (existing.Add((record.Tenant, record.SubjectId)))
            {
                context.SubjectKeys.Add(new SubjectKeyRecord
                {
                    Tenant = record.Tenant,
                    SubjectId = record.SubjectId,
                    KeysetId = record.KeysetId,
                    WrappedKey = record.WrappedKey?.ToArray(),
                    CreatedAt = record.CreatedAt,
                    ShreddedAt = record.ShreddedAt,
                });
                added++;
            }
        }

        await context.SaveChangesAsync(cancellationToken);
        return new SubjectKeyMerge(added, records.Count - added);
    }

    /// <summary>
    /// Rewraps every live subject key that is not under the <c>subjects</c> keyset's primary version (after
    /// <c>keys rotate --keyset subjects</c>), so old versions stop being needed. Each key is rewritten only if its
    /// wrapped value is still the one read (a concurrent shred wins); safe to stop and run again.
    /// </summary>
    /// <param name="cancellationToken">Stops between keys.</param>
    /// <returns>How many keys were rewrapped.</returns>
    public async Task<int> RewrapAsync(CancellationToken cancellationToken = default)
    {
        var wrapping = Volatile.Read(ref _wrapping);
        var primary = wrapping.PrimaryVersion;
        var rewrapped = 0;
        await using var context = _keys();
        var records = await context.SubjectKeys.AsNoTracking().Where(k => k.WrappedKey != null).ToListAsync(cancellationToken);
        foreach (var record in records)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var info = FieldCiphertext.Inspect(record.WrappedKey);
            if (info.KeysetId == wrapping.Id && info.KeyVersion == primary)
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

        // The old wrapped values were overwritten in place on SQLite (secure delete); drop the log's copies too.
        await TruncateLogAsync(context, cancellationToken);
        return rewrapped;
    }

    private async Task<Destruction> DestroyAsync(string tenant, string subjectId, DateTimeOffset when, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            await using var context = _keys();
            var record = await context.SubjectKeys.SingleOrDefaultAsync(k => k.Tenant == tenant && k.SubjectId == subjectId, cancellationToken);
            Destruction outcome;
            if (record is null)
            {
                // A tombstone even for a subject that never had a key, so no key can be made for it later by mistake.
                context.SubjectKeys.Add(new SubjectKeyRecord { Tenant = tenant, SubjectId = subjectId, CreatedAt = when, ShreddedAt = when });
                outcome = Destruction.TombstoneAdded;
            }
            else if (record.WrappedKey is not null)
            {
                CryptographicOperations.ZeroMemory(record.WrappedKey);
                record.WrappedKey = null;
                record.ShreddedAt = when;
                outcome = Destruction.KeyDestroyed;
            }
            else
            {
                return Destruction.AlreadyShredded;
            }

            try
            {
                await context.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateException) when (record is null && attempt == 0)
            {
                continue; // a key was made for this subject meanwhile: read it and destroy it
            }

            await TruncateLogAsync(context, cancellationToken);
            return outcome;
        }
    }

    // SQLite in WAL mode keeps earlier versions of changed pages (the one holding the key included) in the -wal file
    // until a checkpoint resets it; TRUNCATE copies the pages back and cuts the file to zero bytes
    // (https://www.sqlite.org/pragma.html#pragma_wal_checkpoint). In rollback-journal mode it does nothing.
    private static async Task TruncateLogAsync(SubjectKeyDbContext context, CancellationToken cancellationToken)
    {
        if (SqliteSecureDelete.IsSqlite(context.Database.GetDbConnection()))
        {
            await context.Database.ExecuteSqlRawAsync("PRAGMA wal_checkpoint(TRUNCATE);", cancellationToken);
        }
    }

    private async Task<IReadOnlyList<ShredRecord>> DataTombstonesAsync(CancellationToken cancellationToken)
    {
        if (_data is null)
        {
            return [];
        }

        await using var data = _data();
        var rows = await data.SubjectTombstones.AsNoTracking().ToListAsync(cancellationToken);
        return [.. rows.Select(t => new ShredRecord(t.Tenant, t.SubjectId, t.ShreddedAt))];
    }

    // Adds the tombstones the data database lacks; returns how many.
    private async Task<int> RecordInDataAsync(IReadOnlyList<ShredRecord> shreds, CancellationToken cancellationToken)
    {
        if (_data is null || shreds.Count == 0)
        {
            return 0;
        }

        await using var data = _data();
        List<ShredRecord> missing;
        if (shreds.Count == 1)
        {
            var (tenant, subject) = (shreds[0].Tenant, shreds[0].SubjectId);
            missing = await data.SubjectTombstones.AnyAsync(t => t.Tenant == tenant && t.SubjectId == subject, cancellationToken) ? [] : [shreds[0]];
        }
        else
        {
            var known = (await data.SubjectTombstones.AsNoTracking().Select(t => new { t.Tenant, t.SubjectId }).ToListAsync(cancellationToken))
                .Select(t => (t.Tenant, t.SubjectId)).ToHashSet();
            missing = [.. shreds.Where(s => known.Add((s.Tenant, s.SubjectId)))];
        }

        if (missing.Count == 0)
        {
            return 0;
        }

        data.SubjectTombstones.AddRange(missing.Select(s => new SubjectTombstone { Tenant = s.Tenant, SubjectId = s.SubjectId, ShreddedAt = s.ShreddedAt }));
        try
        {
            await data.SaveChangesAsync(cancellationToken);
            return missing.Count;
        }
        catch (DbUpdateException) when (missing.Count == 1)
        {
            return 0; // recorded meanwhile by a concurrent shred of the same subject
        }
    }

    private CryptoAccessEvent ShredEvent(string tenant, string subjectId, string actor, string details) =>
        new(_time.GetUtcNow(), actor, "admin_change", "success")
        {
            Tenant = tenant,
            Entity = "data_subject",
            RecordId = subjectId,
            Privilege = "crypto_shred",
            Details = details,
        };

    private SubjectKeyRecord NewRecord(string tenant, string subjectId, Keyset keyset) => new()
    {
        Tenant = tenant,
        SubjectId = subjectId,
        KeysetId = keyset.Id,
        WrappedKey = Wrap(tenant, subjectId, keyset),
        CreatedAt = _time.GetUtcNow(),
    };

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

/// <summary>What a shred through the encryption service did.</summary>
internal enum SubjectShredOutcome
{
    /// <summary>The subject's live key was destroyed.</summary>
    KeyDestroyed = 1,

    /// <summary>The subject had no key: a tombstone now stops one from ever being made.</summary>
    TombstoneRecorded = 2,

    /// <summary>It was shredded before: nothing changed.</summary>
    AlreadyShredded = 3,
}
