using System.Security.Claims;

namespace CrmSecurity.Crypto.Service;

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
public sealed record UnmaskedFieldRequest(string Tenant, string Entity, string Field, string? RecordId, CrmAuthorization.CrmRecord? Record = null, bool UntrustedLocation = false);

/// <summary>Whether the caller may see the plaintext, and why (the reason goes into the access event, never a value).</summary>
/// <param name="Allowed">True only when a grant was found.</param>
/// <param name="Reason">Which grant allowed it, or why it was refused.</param>
public sealed record UnmaskedFieldDecision(bool Allowed, string Reason)
{
    /// <summary>An allow, naming the grant.</summary>
    /// <param name="reason">Which grant allowed it.</param>
    public static UnmaskedFieldDecision Allow(string reason) => new(true, reason);

    /// <summary>A refusal, saying why.</summary>
    /// <param name="reason">Why it was refused.</param>
    public static UnmaskedFieldDecision Deny(string reason) => new(false, reason);
}

/// <summary>
/// The seam between the encryption service and the authorization model: may the caller read this record (the same check
/// as <c>/authz/v1/check</c>) and does it hold <c>read_unmasked</c> on this entity field (design.md, field security
/// profiles)? The encryption service decrypts only on an explicit allow. The host wires the authorization model (Identity)
/// here; without it every decrypt is refused (deny by default).
/// </summary>
public interface IUnmaskedFieldAccess
{
    /// <summary>Decides whether <paramref name="caller"/> may see the plaintext of <paramref name="request"/>'s field.</summary>
    /// <param name="caller">The validated access token's principal.</param>
    /// <param name="request">The field, record and tenant asked about.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>The decision and its reason.</returns>
    ValueTask<UnmaskedFieldDecision> CheckAsync(ClaimsPrincipal caller, UnmaskedFieldRequest request, CancellationToken cancellationToken);
}

/// <summary>The default: no grant is known, so nothing is decrypted (deny by default).</summary>
internal sealed class DenyUnmaskedFieldAccess : IUnmaskedFieldAccess
{
    public const string Reason = "no read_unmasked grant source is configured (deny by default)";

    public ValueTask<UnmaskedFieldDecision> CheckAsync(ClaimsPrincipal caller, UnmaskedFieldRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(UnmaskedFieldDecision.Deny(Reason));
}

/// <summary>A client of the token issuer as the encryption service needs it, looked up now (not as its token says).</summary>
/// <param name="Confidential">Whether it authenticates at the token endpoint (a back end that keeps the records).</param>
/// <param name="Tenants">The tenants it is registered for.</param>
public sealed record CryptoServiceClient(bool Confidential, IReadOnlyList<string> Tenants);

/// <summary>
/// The token issuer's registered clients, when the issuer runs in this host: a tenant removed from a client stops its
/// tokens at once, and only a confidential client may declare where a record lives. Without it, the token's own tenant
/// claims are the binding. Resolved from the request's services, so it may be scoped.
/// </summary>
public interface ICryptoServiceClients
{
    /// <summary>The client registered under <paramref name="clientId"/> now, or null when there is none.</summary>
    /// <param name="clientId">The token's <c>client_id</c>.</param>
    /// <param name="cancellationToken">Cancels the lookup.</param>
    /// <returns>The registration, or null.</returns>
    ValueTask<CryptoServiceClient?> FindAsync(string clientId, CancellationToken cancellationToken);
}
