using System.Data.Common;
using System.Security.Claims;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>
/// A caller of the review workflow as the host's authorization model sees them. A refusal is null when allowed, or a
/// message naming the privilege that is missing.
/// </summary>
/// <param name="Id">The caller's user id (recorded as reviewer and audit actor).</param>
/// <param name="Name">The caller's user name, for the audit trail and the pages.</param>
/// <param name="ClientId">The OAuth client the caller came through, if any.</param>
/// <param name="SourceIp">The caller's address, for the audit trail.</param>
/// <param name="CannotRead">Why the caller may not read findings, or null.</param>
/// <param name="CannotReview">Why the caller may not change a review, suppress or reveal, or null.</param>
public sealed record ReviewCaller(string Id, string Name, string? ClientId, string? SourceIp, string? CannotRead, string? CannotReview)
{
    /// <summary>
    /// Set when the host requires two-step verification for review and this person's sign-in did not pass it (OWASP ASVS
    /// 4.0.3 V4.3.1): where they turn it on. Pages send the person there; the API refuses with 403 saying so.
    /// </summary>
    public string? SecondFactorPage { get; init; }

    /// <summary>The person's time zone, an IANA id (OpenID Connect <c>zoneinfo</c>), null when not set: the review pages show times in it.</summary>
    public string? ZoneInfo { get; init; }
}

/// <summary>Who the caller is and what they may do in review; the host bridges it to its authorization model.</summary>
public interface IReviewAccess
{
    /// <summary>The caller, or null when the principal is no known, enabled user (refused: deny by default).</summary>
    ReviewCaller? Identify(ClaimsPrincipal principal, string? sourceIp);
}

/// <summary>One review action for the audit trail: what was done to which target, with its state before and after as JSON.</summary>
/// <param name="Action">For example <c>finding.status</c>, <c>finding.reveal</c>, <c>suppression.create</c>.</param>
/// <param name="TargetKind">For example <c>audit_finding</c> or <c>audit_suppression</c>.</param>
/// <param name="TargetId">The finding or suppression id.</param>
/// <param name="TargetName">A name for people reading the trail (never a revealed user name).</param>
/// <param name="Before">The state before, as a JSON object, or null.</param>
/// <param name="After">The state after, as a JSON object, or null.</param>
public sealed record ReviewAuditEntry(string Action, string TargetKind, string TargetId, string TargetName, string? Before, string? After);

/// <summary>The host's tamper-evident audit trail, written in the review change's own database transaction.</summary>
public interface IReviewAuditTrail
{
    /// <summary>
    /// Appends the entries inside <paramref name="transaction"/> (the review change's, on the shared database), so the
    /// change and its audit entries commit or roll back together. Throws when the entries cannot be written.
    /// </summary>
    Task AppendAsync(ReviewCaller actor, IReadOnlyList<ReviewAuditEntry> entries, DbTransaction transaction, CancellationToken cancellationToken);
}

/// <summary>Without a host bridge nobody may review (deny by default) and nothing can be audited.</summary>
internal sealed class NoReviewAccess : IReviewAccess, IReviewAuditTrail
{
    public ReviewCaller? Identify(ClaimsPrincipal principal, string? sourceIp) => null;

    public Task AppendAsync(ReviewCaller actor, IReadOnlyList<ReviewAuditEntry> entries, DbTransaction transaction, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("No audit trail is registered for the review workflow; review changes are refused.");
}
