using System.Data.Common;
using System.Security.Claims;
using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Contracts;

namespace CrmSecurity.Server.AuditReview;

/// <summary>
/// The review workflow's rights and audit trail, taken from Identity's public contract: reading findings needs
/// <c>read</c> on the system entity <c>audit_finding</c>, every review change and every reveal needs <c>update</c> on it.
/// The auditor role holds both; security and system admins hold read only, so they see findings but cannot change review
/// outcomes, while auditors hold no privilege on roles (separation of duties, NIST SP 800-53 AC-5). Nothing is allowed
/// unless a privilege says so. Review changes are chained into Identity's audit trail inside their own transaction.
/// </summary>
internal sealed class ReviewIdentityBridge(ICrmRights rights, IAuditTrail trail) : IReviewAccess, IReviewAuditTrail
{
    public ReviewCaller? Identify(ClaimsPrincipal principal, string? sourceIp) =>
        rights.Identify(principal, sourceIp) is { } actor
            ? new ReviewCaller(actor.Id, actor.Name, actor.ClientId, sourceIp,
                actor.Refusal(CrmSystemEntities.Finding, CrmAction.Read), actor.Refusal(CrmSystemEntities.Finding, CrmAction.Update))
            {
                // Review releases identities and decides about colleagues: a privileged interface (ASVS V4.3.1).
                SecondFactorPage = actor.NeedsSecondFactor ? CrmActor.SecondFactorPage("review") : null,
                ZoneInfo = actor.ZoneInfo,
            }
            : null;

    public Task AppendAsync(ReviewCaller actor, IReadOnlyList<ReviewAuditEntry> entries, DbTransaction transaction, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(actor);
        ArgumentNullException.ThrowIfNull(entries);
        return trail.AppendAsync(
            new AuditActor(actor.Id, actor.Name, actor.ClientId, actor.SourceIp),
            [.. entries.Select(e => new AuditTrailEntry(e.Action, e.TargetKind, e.TargetId, e.TargetName, e.Before, e.After))],
            transaction,
            cancellationToken);
    }
}
