using System.Security.Claims;

namespace CrmSecurity.Server.EncryptionService;

/// <summary>A field of a CRM record whose plaintext a caller asks to see.</summary>
/// <param name="Tenant">The tenant the value belongs to.</param>
/// <param name="Entity">The entity (table).</param>
/// <param name="Field">The field (column).</param>
/// <param name="RecordId">The record (row id) the value was read from; null when the request names none.</param>
/// <param name="Record">
/// Where the record lives (owner, business unit, shares), as declared by a caller trusted to know it (the CRM app's back
/// end); null when none was declared or the declaration cannot be believed. Without it only grants that do not depend on
/// the record's location count.
/// </param>
/// <param name="UntrustedLocation">True when the request declared a location that was set aside (a user's own token).</param>
internal sealed record UnmaskedFieldRequest(string Tenant, string Entity, string Field, string? RecordId, CrmAuthorization.CrmRecord? Record = null, bool UntrustedLocation = false);

/// <summary>Whether the caller may see the plaintext, and why (the reason goes into the access event, never a value).</summary>
/// <param name="Allowed">True only when a grant was found.</param>
/// <param name="Reason">Which grant allowed it, or why it was refused.</param>
internal sealed record UnmaskedFieldDecision(bool Allowed, string Reason)
{
    public static UnmaskedFieldDecision Allow(string reason) => new(true, reason);

    public static UnmaskedFieldDecision Deny(string reason) => new(false, reason);
}

/// <summary>
/// The seam between the encryption service and the authorization model: may the caller read this record (the same check
/// as <c>/authz/v1/check</c>) and does it hold <c>read_unmasked</c> on this entity field (design.md, field security
/// profiles)? The encryption service decrypts only on an explicit allow. The authorization model (Identity) is wired here by the host; until then <see cref="DenyUnmaskedFieldAccess"/>
/// refuses every decrypt.
/// </summary>
internal interface IUnmaskedFieldAccess
{
    ValueTask<UnmaskedFieldDecision> CheckAsync(ClaimsPrincipal caller, UnmaskedFieldRequest request, CancellationToken cancellationToken);
}

/// <summary>The default: no grant is known, so nothing is decrypted (deny by default).</summary>
internal sealed class DenyUnmaskedFieldAccess : IUnmaskedFieldAccess
{
    public const string Reason = "no read_unmasked grant source is configured (deny by default)";

    public ValueTask<UnmaskedFieldDecision> CheckAsync(ClaimsPrincipal caller, UnmaskedFieldRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(UnmaskedFieldDecision.Deny(Reason));
}
