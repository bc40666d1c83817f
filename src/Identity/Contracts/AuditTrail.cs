using System.Data.Common;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Contracts;

/// <summary>
/// Identity's audit trail (the keyed hash chain every admin change is written to), for another module's changes that must
/// be in it, committed or rolled back together with the change itself.
/// </summary>
public interface IAuditTrail
{
    /// <summary>
    /// Appends <paramref name="entries"/> inside <paramref name="transaction"/> (on the same database as Identity's
    /// tables); the caller commits or rolls back. Entries from every module are chained one at a time, in order.
    /// </summary>
    Task AppendAsync(AuditActor actor, IReadOnlyList<AuditTrailEntry> entries, DbTransaction transaction, CancellationToken cancellationToken);
}

/// <summary>Who made a change, as the trail records it.</summary>
public sealed record AuditActor(string Id, string Name, string? ClientId, string? SourceIp);

/// <summary>One change: what was done to which object, with its state before and after (JSON, never a secret).</summary>
public sealed record AuditTrailEntry(string Action, string TargetKind, string TargetId, string TargetName, string? Before, string? After);

/// <summary>
/// Appends on the caller's connection and transaction: a context of its own (the pooled store must never keep a borrowed
/// connection) takes the model-state row's lock first, without changing the version, as every model change does, so
/// chain entries from all writers are serialised. Through <see cref="AuditTrailWriter"/> like every entry: MACed under
/// the audit key, the head record rewritten, the model fingerprint carried forward (these changes touch no model part).
/// </summary>
internal sealed class TransactionalAuditTrail(AuditTrailWriter audit, DetachedStoreOptions options, TimeProvider time) : IAuditTrail
{
    public async Task AppendAsync(AuditActor actor, IReadOnlyList<AuditTrailEntry> entries, DbTransaction transaction, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(actor);
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(transaction);
        if (entries.Count == 0)
        {
            return;
        }

        // Loaded at start, so getting it here touches no other connection.
        var key = await audit.KeyAsync(cancellationToken);

        await using var store = new IdentityStore(options.Options);
        store.Database.SetDbConnection(transaction.Connection!);
        await store.Database.UseTransactionAsync(transaction, cancellationToken);

        await store.ModelState.Where(s => s.Id == ModelStateRecord.SingletonId)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.Version, x => x.Version), cancellationToken);
        var version = await ModelLoader.VersionAsync(store, cancellationToken);
        var now = time.GetUtcNow();
        var head = await AuditTrailWriter.AppendAsync(store, key, entries.Select(e => AuditTrailWriter.Entry(actor, now, version, null, e)), cancellationToken);

        // The transaction is the caller's: detach without committing or disposing it. The head is logged now, as this
        // writer never sees the commit; a change that then fails leaves a logged head the chain never had, which verify
        // reports as a mismatch rather than missing a truncation.
        await store.Database.UseTransactionAsync(null, cancellationToken);
        audit.Announce(head);
    }
}

/// <summary>The store's options for a context that is not pooled (one that borrows a caller's connection).</summary>
internal sealed record DetachedStoreOptions(DbContextOptions<IdentityStore> Options);
