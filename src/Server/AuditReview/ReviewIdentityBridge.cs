using System.Data.Common;
using System.Security.Claims;
using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Server.AuditReview;

/// <summary>
/// The review workflow's rights and audit trail, taken from Identity: reading findings needs <c>read</c> on the system
/// entity <c>audit_finding</c>, every review change and every reveal needs <c>update</c> on it. The auditor role holds both;
/// security and system admins hold read only, so they see findings but cannot change review outcomes, while auditors
/// hold no privilege on roles (separation of duties, NIST SP 800-53 AC-5). Nothing is allowed unless a privilege says so.
/// </summary>
internal sealed class ReviewIdentityBridge(AuthorizationModel model, AuditTrailWriter audit, IOptions<DatabaseOptions> database, TimeProvider time) : IReviewAccess, IReviewAuditTrail
{
    public ReviewCaller? Identify(ClaimsPrincipal principal, string? sourceIp)
    {
        if (principal.Identity?.IsAuthenticated != true || !model.IsLoaded)
        {
            return null;
        }

        // A user's token or cookie acts as that user; a client's own token as the client's application user.
        if (AdminGuard.For(model.Current, principal, sourceIp) is not { } guard)
        {
            return null;
        }

        var read = guard.Require(SystemEntities.Finding, CrmAction.Read);
        var review = guard.Require(SystemEntities.Finding, CrmAction.Update);
        return new ReviewCaller(guard.Actor.Id, guard.Actor.Name, guard.Actor.ClientId, sourceIp, read?.Detail, review?.Detail);
    }

    /// <summary>
    /// Appends to Identity's keyed hash chain inside the review change's transaction: Identity's store is put on the same
    /// connection and transaction, and the model-version row is locked first (without changing the version), as
    /// <see cref="ModelChanges"/> does, so chain entries from review and admin changes are written one at a time, in order.
    /// Through <see cref="AuditTrailWriter"/>, like every entry: MACed under the audit key, the head record rewritten, the
    /// model fingerprint carried forward (a review changes no model part). The audit key was loaded at start, so getting it
    /// here touches no other connection.
    /// </summary>
    public async Task AppendAsync(ReviewCaller actor, IReadOnlyList<ReviewAuditEntry> entries, DbTransaction transaction, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(actor);
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(transaction);
        if (entries.Count == 0)
        {
            return;
        }

        var key = await audit.KeyAsync(cancellationToken);

        // A context of its own on the review's connection: the pooled IdentityStore must never keep a borrowed connection.
        var options = new DbContextOptionsBuilder<IdentityStore>();
        DatabaseSetup.Use(database.Value.ParsedProvider, transaction.Connection!, options);
        options.UseOpenIddict();
        await using var store = new IdentityStore(options.Options);
        await store.Database.UseTransactionAsync(transaction, cancellationToken);

        await store.ModelState.Where(s => s.Id == ModelStateRecord.SingletonId)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.Version, x => x.Version), cancellationToken);
        var version = await ModelLoader.VersionAsync(store, cancellationToken);
        var now = time.GetUtcNow();
        var head = await AuditTrailWriter.AppendAsync(store, key, entries.Select(e => new AuditEntryRecord
        {
            Timestamp = now,
            ActorId = actor.Id,
            ActorName = actor.Name,
            ClientId = actor.ClientId,
            Action = e.Action,
            TargetKind = e.TargetKind,
            TargetId = e.TargetId,
            TargetName = e.TargetName,
            Before = e.Before,
            After = e.After,
            SourceIp = actor.SourceIp,
            ModelVersion = version,
            PreviousHash = "",
            Hash = "",
        }), cancellationToken);

        // The transaction belongs to the review change: detach without committing or disposing it. The head is logged now,
        // as this bridge never sees the commit; a review change that then fails leaves a logged head the chain never had,
        // which verify reports as a mismatch rather than missing a truncation.
        await store.Database.UseTransactionAsync(null, cancellationToken);
        audit.Announce(head);
    }
}
