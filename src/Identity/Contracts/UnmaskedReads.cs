using System.Globalization;
using System.Security.Claims;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;

namespace CrmSecurity.Identity.Contracts;

/// <summary>
/// May a caller see the plaintext of one field of one record? For the encryption service, which decrypts only on an
/// explicit allow. Decided by Identity's authorization model (<see cref="ModelUnmaskedReads"/>).
/// </summary>
public interface IUnmaskedReads
{
    /// <summary>Whether <paramref name="caller"/> (an access token's principal) may read <paramref name="request"/>'s field unmasked, and why.</summary>
    ValueTask<UnmaskedReadDecision> DecideAsync(ClaimsPrincipal caller, UnmaskedRead request, CancellationToken cancellationToken);
}

/// <summary>A field of a CRM record whose plaintext a caller asks to see.</summary>
/// <param name="Entity">The entity (table).</param>
/// <param name="Field">The field (column).</param>
/// <param name="RecordId">The record (row id) the value was read from; null when the request names none.</param>
/// <param name="Record">
/// Where the record lives (owner, business unit, shares), as declared by a caller trusted to know it (the CRM app's back
/// end); null when none was declared or the declaration cannot be believed. Without it only grants that do not depend on
/// the record's location count.
/// </param>
/// <param name="UntrustedLocation">True when the request declared a location that was set aside (a user's own token).</param>
public sealed record UnmaskedRead(string Entity, string Field, string? RecordId, CrmRecord? Record = null, bool UntrustedLocation = false);

/// <summary>Whether the caller may see the plaintext, and why (the reason goes into the access event, never a value).</summary>
/// <param name="Allowed">True only when a grant was found.</param>
/// <param name="Reason">Which grant allowed it, or why it was refused.</param>
public sealed record UnmaskedReadDecision(bool Allowed, string Reason)
{
    internal static UnmaskedReadDecision Allow(string reason) => new(true, reason);

    internal static UnmaskedReadDecision Deny(string reason) => new(false, reason);
}

/// <summary>
/// Decrypt permission from the authorization model, two checks that both must allow (deny by default):
/// the record check of <c>/authz/v1/check</c> (read on the record: owner, business unit, shares, manager hierarchy),
/// and the field check (the caller's field security profiles grant read_unmasked or update on the field).
/// The decision uses a model at least as new as the token's <c>perm_ver</c>, so a token issued after a grant is never
/// refused on older data.
/// </summary>
/// <remarks>
/// Where the record lives comes from the request, as in a decision request, but only a caller trusted to know it (the
/// CRM app's back end) may declare it. Otherwise, and for a value that names no record, only grants that hold wherever
/// the record lives (organization depth) count: that is all the model can check without believing the caller.
/// </remarks>
internal sealed class ModelUnmaskedReads(AuthorizationModel model, Authorization.Risk.RiskAccess risk) : IUnmaskedReads
{
    public async ValueTask<UnmaskedReadDecision> DecideAsync(ClaimsPrincipal caller, UnmaskedRead request, CancellationToken cancellationToken)
    {
        var subject = caller.FindFirst("sub")?.Value;
        var clientId = caller.FindFirst("client_id")?.Value;
        var permVer = long.TryParse(caller.FindFirst("perm_ver")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : (long?)null;
        var snapshot = await model.ForTokenAsync(subject ?? "", permVer, cancellationToken);

        // The field: read_unmasked or update from a field security profile.
        var (fieldAllowed, fieldReason) = snapshot.UnmaskedRead(subject, clientId, request.Entity, request.Field);
        if (!fieldAllowed)
        {
            return UnmaskedReadDecision.Deny(fieldReason);
        }

        // The record: the same check as POST /authz/v1/check for action read, on the same snapshot.
        var user = snapshot.CallerIndex(subject, clientId);
        var entity = snapshot.EntityIndex(request.Entity);
        var record = ToRecord(request);
        var decision = snapshot.Check(user, entity, CrmAction.Read, record);
        var explained = snapshot.Explain(decision, record, permVer).Reason;
        var note = request.UntrustedLocation
            ? " The record's owner, business unit and shares were declared with a user's own token, which cannot vouch for them, so only grants that hold wherever the record lives were counted; decrypt through the CRM app's back end (its own token, or a token it exchanged for the user, RFC 8693)."
            : request.RecordId is null
                ? " The request names no record, so only grants that hold for every record of the entity count; name the record (rowId and its location) to decrypt one of it."
                : request.Record is null ? " The request declared no location of the record (owner, business unit), so only grants that hold wherever it lives count." : "";
        // Risk that changes access: while an open finding about the user masks secured fields, nothing is decrypted for them.
        if (decision.Allowed && user >= 0 && risk.For(snapshot.Users[user].Id) is ({ } finding, { MaskSecuredFields: true }))
        {
            return UnmaskedReadDecision.Deny($"masked while the open {finding.Severity} finding {finding.FindingId} ({finding.Detector}) is under review; the model alone would allow it");
        }

        return decision.Allowed
            ? UnmaskedReadDecision.Allow($"{fieldReason}; record: {explained}")
            : UnmaskedReadDecision.Deny($"record: {explained}{note}");
    }

    /// <summary>
    /// The record as the decision API takes it. A location that was not declared, or was set aside, leaves only the id:
    /// then ownership, business-unit depth, inline shares and hierarchy cannot match, and only a location-independent
    /// grant (organization depth) allows.
    /// </summary>
    private static RecordRef ToRecord(UnmaskedRead request)
    {
        if (request.Record is not { } declared)
        {
            return new RecordRef(request.RecordId, null, PrincipalKind.User, null);
        }

        // The endpoint has validated every name below (400 naming the field otherwise).
        var ownerKind = declared.OwnerKind is { } kind && CrmNames.TryParsePrincipal(kind, out var parsed) ? parsed : PrincipalKind.User;
        ShareRef[]? shares = null;
        if (declared.Shares is { Count: > 0 } given)
        {
            shares = [.. given.Select(share => new ShareRef(
                CrmNames.TryParsePrincipal(share.Kind, out var shareKind) ? shareKind : PrincipalKind.User,
                share.Principal,
                share.Actions.Aggregate(ActionSet.None, (set, name) => CrmNames.TryParseAction(name, out var action) ? set | ActionSets.Of(action) : set)))];
        }

        return new RecordRef(request.RecordId, declared.Owner, ownerKind, declared.BusinessUnit, shares);
    }
}
