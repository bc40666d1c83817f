using System.Text.Json;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.AuditTrail;

/// <summary>
/// The one way entries get into the audit trail (admin and incident changes, policy and demo seeding, review actions):
/// each entry is MACed under the audit key and chained, the head record is rewritten in the same transaction, and the new
/// head is logged (event 4420, sequence and MAC prefix, never the key) so it can be kept outside the database. Callers
/// hold the model-version row lock, so entries are written one at a time, in order.
/// </summary>
internal sealed partial class AuditTrailWriter(IdentitySecrets secrets, TimeProvider time, ILogger<AuditTrailWriter> logger)
{
    /// <summary>
    /// A new entry of the chain, before <see cref="AppendAsync"/> gives it its place and MAC. Without a fingerprint the
    /// newest recorded one is carried forward (the change touched no model part).
    /// </summary>
    public static AuditEntryRecord Entry(AuditActor actor, DateTimeOffset at, long modelVersion, string? modelFingerprint, AuditTrailEntry change) => new()
    {
        Timestamp = at,
        ActorId = actor.Id,
        ActorName = actor.Name,
        ClientId = actor.ClientId,
        Action = change.Action,
        TargetKind = change.TargetKind,
        TargetId = change.TargetId,
        TargetName = change.TargetName,
        Before = change.Before,
        After = change.After,
        SourceIp = actor.SourceIp,
        ModelVersion = modelVersion,
        ModelFingerprint = modelFingerprint,
        PreviousHash = "",
        Hash = "",
    };

    /// <summary>
    /// The audit key (made on first use). Get it before opening the change's transaction: making it writes through a
    /// connection of its own, which SQLite's single writer would make wait for the transaction.
    /// </summary>
    public Task<byte[]> KeyAsync(CancellationToken cancellationToken) => secrets.GetAsync(AuditChain.KeyName, cancellationToken);

    /// <summary>
    /// Appends entries after the current head, inside the caller's transaction. An entry without a model fingerprint
    /// carries the newest one forward (it changed no model part). Returns the new head; log it with <see cref="Announce"/>
    /// once the transaction commits.
    /// </summary>
    public static async Task<AuditHead> AppendAsync(IdentityStore store, byte[] key, IEnumerable<AuditEntryRecord> entries, CancellationToken cancellationToken)
    {
        var last = await store.AuditTrail.AsNoTracking().OrderByDescending(e => e.Sequence)
            .Select(e => new { e.Sequence, e.Hash }).FirstOrDefaultAsync(cancellationToken);
        var carried = await RecordedFingerprintAsync(store, cancellationToken);
        var sequence = last?.Sequence ?? 0;
        var previous = last?.Hash ?? AuditChain.Genesis;
        foreach (var entry in entries)
        {
            // The timestamp column (DateTimeOffsetToBinaryConverter) keeps ticks / 1000, i.e. 100 µs: MAC exactly what is stored.
            entry.Timestamp = new DateTimeOffset(entry.Timestamp.UtcTicks - (entry.Timestamp.UtcTicks % 1000), TimeSpan.Zero);
            entry.Sequence = ++sequence;
            entry.PreviousHash = previous;
            entry.Scheme = AuditChain.KeyedScheme;
            entry.ModelFingerprint ??= carried;
            carried = entry.ModelFingerprint;
            entry.Hash = AuditChain.Mac(key, entry);
            previous = entry.Hash;
            store.AuditTrail.Add(entry);
        }

        var head = await store.AuditHeads.SingleOrDefaultAsync(h => h.Id == AuditHeadRecord.SingletonId, cancellationToken);
        if (head is null)
        {
            head = new AuditHeadRecord { Mac = "", HeadMac = "" };
            store.AuditHeads.Add(head);
        }

        head.Sequence = sequence;
        head.Mac = previous;
        head.HeadMac = AuditChain.HeadMac(key, sequence, previous);
        await store.SaveChangesAsync(cancellationToken);
        return new AuditHead(sequence, previous);
    }

    /// <summary>Logs a committed head, for operators to keep outside the database (<c>audit verify --expect-head</c>).</summary>
    public void Announce(AuditHead head) => LogHead(logger, head.Sequence, head.Prefix);

    /// <summary>The newest model fingerprint an entry recorded, or null.</summary>
    public static Task<string?> RecordedFingerprintAsync(IdentityStore store, CancellationToken cancellationToken) =>
        store.AuditTrail.AsNoTracking().Where(e => e.ModelFingerprint != null).OrderByDescending(e => e.Sequence)
            .Select(e => e.ModelFingerprint).FirstOrDefaultAsync(cancellationToken);

    /// <summary>
    /// The parts of the model whose tables differ from the newest fingerprint in the trail (inside the change's transaction,
    /// before the change): changes nobody made through the audited path. Empty when they match or nothing was recorded yet.
    /// </summary>
    public static async Task<(ModelFingerprint Current, IReadOnlyList<string> Drift)> DriftAsync(IdentityStore store, byte[] key, CancellationToken cancellationToken)
    {
        var current = await ModelFingerprint.ComputeAsync(store, key, cancellationToken);
        var recorded = ModelFingerprint.Parse(await RecordedFingerprintAsync(store, cancellationToken));
        return (current, recorded is null ? [] : current.Differences(recorded));
    }

    /// <summary>
    /// A database from before the chain was keyed: its entries are sealed under the audit key at first start (once, in
    /// one transaction), and an <c>audit.seal</c> entry says so, with what the unkeyed chain looked like then, so the old
    /// entries stay verifiable from then on. Sealing happens only while no keyed entry exists: an unkeyed entry that
    /// appears later was written by someone without the key, and stays for verify to report.
    /// </summary>
    public async Task SealAsync(IdentityStore store, CancellationToken cancellationToken)
    {
        var key = await KeyAsync(cancellationToken);
        if (!await store.AuditTrail.AnyAsync(e => e.Scheme == null, cancellationToken))
        {
            return;
        }

        var strategy = store.Database.CreateExecutionStrategy();
        await strategy.ExecuteAsync(async () =>
        {
            store.ChangeTracker.Clear();
            await using var transaction = await store.Database.BeginTransactionAsync(cancellationToken);
            await store.ModelState.Where(s => s.Id == ModelStateRecord.SingletonId)
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.Version, x => x.Version), cancellationToken);
            var entries = await store.AuditTrail.OrderBy(e => e.Sequence).ToListAsync(cancellationToken);
            if (entries.Count == 0 || entries.Exists(e => e.Scheme is not null))
            {
                await transaction.RollbackAsync(cancellationToken);
                if (entries.Exists(e => e.Scheme is null))
                {
                    LogUnkeyedInKeyedChain(logger);
                }

                return;
            }

            var unkeyed = AuditChain.VerifyLegacy(entries);
            var unkeyedHead = entries[^1].Hash;
            var previous = AuditChain.Genesis;
            foreach (var entry in entries)
            {
                entry.PreviousHash = previous;
                entry.Scheme = AuditChain.KeyedScheme;
                entry.Hash = AuditChain.Mac(key, entry);
                previous = entry.Hash;
            }

            await store.SaveChangesAsync(cancellationToken);
            var version = await ModelLoader.VersionAsync(store, cancellationToken);
            var head = await AppendAsync(store, key,
            [
                new AuditEntryRecord
                {
                    Timestamp = time.GetUtcNow(),
                    ActorId = "system",
                    ActorName = "start-up",
                    Action = AuditChain.SealAction,
                    TargetKind = "audit_trail",
                    TargetId = "audit_trail",
                    TargetName = "audit trail",
                    After = JsonSerializer.Serialize(new Dictionary<string, object>
                    {
                        ["sealed_entries"] = entries.Count,
                        ["unkeyed_chain"] = unkeyed,
                        ["unkeyed_head"] = unkeyedHead,
                    }),
                    ModelVersion = version,
                    ModelFingerprint = (await ModelFingerprint.ComputeAsync(store, key, cancellationToken)).ToString(),
                    PreviousHash = "",
                    Hash = "",
                },
            ], cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            store.ChangeTracker.Clear();
            LogSealed(logger, entries.Count, unkeyed);
            Announce(head);
        });
    }

    [LoggerMessage(EventId = 4420, Level = LogLevel.Information, Message = "Audit trail head {Sequence}:{Mac}")]
    private static partial void LogHead(ILogger logger, long sequence, string mac);

    [LoggerMessage(EventId = 4421, Level = LogLevel.Warning, Message = "Sealed {Entries} audit entries written before the trail was keyed under the audit key; the unkeyed chain was {Unkeyed}")]
    private static partial void LogSealed(ILogger logger, int entries, string unkeyed);

    [LoggerMessage(EventId = 4422, Level = LogLevel.Error, Message = "The audit trail holds unkeyed entries among keyed ones: they were not written by this service; `audit verify` names them")]
    private static partial void LogUnkeyedInKeyedChain(ILogger logger);
}
