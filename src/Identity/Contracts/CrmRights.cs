using System.Security.Claims;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;

namespace CrmSecurity.Identity.Contracts;

/// <summary>
/// Rights on the service's own entities (<see cref="CrmSystemEntities"/>) for another module's endpoints and pages, decided
/// by Identity's authorization model the way the admin API decides them: deny by default, organization depth for objects
/// of the whole organisation.
/// </summary>
public interface ICrmRights
{
    /// <summary>
    /// The caller as the model knows it: a user's token or cookie acts as that user, a client's own token
    /// (<c>sub</c> = <c>client_id</c>) as the client's application user. Null for anyone else, a disabled user, or
    /// before the model is loaded.
    /// </summary>
    CrmActor? Identify(ClaimsPrincipal principal, string? sourceIp);
}

/// <summary>The service's own entities another module asks about.</summary>
public static class CrmSystemEntities
{
    /// <summary>The analyzer's findings: <c>read</c> sees them, <c>update</c> reviews and reveals them.</summary>
    public const string Finding = SystemEntities.Finding;
}

/// <summary>One caller on one version of the model.</summary>
public sealed class CrmActor
{
    private readonly AdminGuard _guard;

    internal CrmActor(AdminGuard guard, bool needsSecondFactor)
    {
        _guard = guard;
        NeedsSecondFactor = needsSecondFactor;
    }

    /// <summary>
    /// True when the installation requires two-step verification for privileged areas (<c>Identity:AdminsRequireSecondFactor</c>;
    /// OWASP ASVS 4.0.3 V4.3.1) and this person's sign-in or token did not pass it (no <c>amr</c> <c>mfa</c>). A client's
    /// own application user is no person and never needs it. Send a person to <see cref="SecondFactorPage"/>.
    /// </summary>
    public bool NeedsSecondFactor { get; }

    /// <summary>
    /// Where a person turns two-step verification on, with a note naming <paramref name="area"/> (<c>admin</c> or
    /// <c>review</c>): a path from the application's root (pages put <c>~</c> before it to resolve it under a path base).
    /// </summary>
    public static string SecondFactorPage(string area) => "/account/two-factor?required=" + Uri.EscapeDataString(area);

    /// <summary>The user's id (for a client, its application user's id).</summary>
    public string Id => _guard.Actor.Id;

    /// <summary>The user's sign-in name.</summary>
    public string Name => _guard.Actor.Name;

    /// <summary>The client the token was issued to, null for a sign-in cookie.</summary>
    public string? ClientId => _guard.Actor.ClientId;

    /// <summary>Where the request came from.</summary>
    public string? SourceIp => _guard.Actor.SourceIp;

    /// <summary>The person's time zone, an IANA id (OpenID Connect Core §5.1 <c>zoneinfo</c>), null when not set: pages show times in it.</summary>
    public string? ZoneInfo => _guard.CallerInfo.Definition.ZoneInfo;

    /// <summary>Null when the caller may do <paramref name="action"/> on <paramref name="systemEntity"/>; otherwise why not.</summary>
    public string? Refusal(string systemEntity, CrmAction action) => _guard.Require(systemEntity, action)?.Detail;
}

internal sealed class ModelCrmRights(AuthorizationModel model, AdminSecondFactor secondFactor) : ICrmRights
{
    public CrmActor? Identify(ClaimsPrincipal principal, string? sourceIp)
    {
        ArgumentNullException.ThrowIfNull(principal);
        if (principal.Identity?.IsAuthenticated != true || !model.IsLoaded)
        {
            return null;
        }

        return AdminGuard.For(model.Current, principal, sourceIp) is { } guard ? new CrmActor(guard, !secondFactor.Satisfied(principal)) : null;
    }
}
