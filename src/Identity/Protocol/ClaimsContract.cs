using System.Security.Claims;
using System.Text.Json;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// The claims every token carries, a stable contract for CRM apps and the authorization model (docs/identity.md, "Claims contract").
/// Access tokens: <c>sub</c>, <c>name</c>, <c>preferred_username</c>, <c>email</c>, <c>role</c> (flat, one per role),
/// <c>tenant</c>, <c>business_unit</c>, <c>perm_ver</c>, <c>amr</c>, plus the protocol claims (<c>iss</c>, <c>aud</c>,
/// <c>exp</c>, <c>iat</c>, <c>jti</c>, <c>client_id</c>, <c>scope</c>, RFC 9068 §2.2), <c>zoneinfo</c> when set. ID tokens:
/// the same user claims, <c>email</c> only with the <c>email</c> scope, <c>name</c> and <c>zoneinfo</c> only with <c>profile</c>.
/// </summary>
internal static class ClaimsContract
{
    public const string Tenant = "tenant";
    public const string BusinessUnit = "business_unit";

    /// <summary>Version of the user's permissions in the authorization model; bumps when roles or grants change.</summary>
    public const string PermissionModelVersion = "perm_ver";

    public const string RolesScope = "roles";

    /// <summary>OpenID Connect Back-Channel Logout 1.0 §2.1 / Front-Channel Logout 1.0 §3: the session id claim.</summary>
    public const string SessionId = "sid";

    /// <summary>The claims of a user's tokens. Roles come from the authorization model (direct and through teams).</summary>
    public static async Task<ClaimsPrincipal> ForUserAsync(
        AuthorizationModel model, CrmUser user, IEnumerable<string> scopes, IEnumerable<string> authenticationMethods, CancellationToken cancellationToken = default)
    {
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, user.Id)
            .SetClaim(Claims.Name, user.DisplayName ?? user.UserName)
            .SetClaim(Claims.PreferredUsername, user.UserName)
            .SetClaim(Claims.Email, user.Email)
            .SetClaim(Tenant, user.Tenant)
            .SetClaim(BusinessUnit, user.BusinessUnit)
            .SetClaim(Claims.Zoneinfo, user.ZoneInfo);
        identity.AddClaim(new Claim(PermissionModelVersion, user.PermissionModelVersion.ToString(System.Globalization.CultureInfo.InvariantCulture), ClaimValueTypes.Integer64));
        identity.SetClaims(Claims.Role, [.. await model.RolesOfAsync(user.Id, user.PermissionModelVersion, cancellationToken)]);
        // OpenID Connect Core §2: amr is a JSON array even with one value.
        // OpenIddict's own claim helpers do not take arrays; a JSON_ARRAY claim is written as an array by IdentityModel.
        identity.AddClaim(new Claim(Claims.AuthenticationMethodReference, JsonSerializer.Serialize(authenticationMethods.Distinct().ToArray()), JsonClaimValueTypes.JsonArray));

        var granted = scopes.ToHashSet(StringComparer.Ordinal);
        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(granted);
        principal.SetDestinations(claim => Destinations(claim, granted));
        return principal;
    }

    /// <summary>The amr values of a principal read back from one of our tokens (an array claim, or single values).</summary>
    public static IEnumerable<string> AuthenticationMethods(ClaimsPrincipal principal)
    {
        foreach (var claim in principal.FindAll(Claims.AuthenticationMethodReference))
        {
            if (claim.ValueType == JsonClaimValueTypes.JsonArray)
            {
                foreach (var value in JsonSerializer.Deserialize<string[]>(claim.Value) ?? [])
                {
                    yield return value;
                }
            }
            else
            {
                yield return claim.Value;
            }
        }
    }

    /// <summary>
    /// Adds <c>auth_time</c>, when the user last actively authenticated (OpenID Connect Core §2: required in the ID token
    /// when max_age was asked for), to the ID and access tokens. A refresh or an exchange carries the original time over.
    /// </summary>
    public static void SetAuthenticationTime(ClaimsPrincipal principal, DateTimeOffset? authenticatedAt)
    {
        if (authenticatedAt is not { } at || principal.Identity is not ClaimsIdentity identity)
        {
            return;
        }

        identity.RemoveClaims(Claims.AuthenticationTime);
        var claim = new Claim(Claims.AuthenticationTime, at.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture), ClaimValueTypes.Integer64);
        claim.SetDestinations(OpenIddictConstants.Destinations.AccessToken, OpenIddictConstants.Destinations.IdentityToken);
        identity.AddClaim(claim);
    }

    /// <summary>
    /// Adds <c>acr</c> (OpenID Connect Core §2) to the ID and access tokens and <c>sid</c> (OpenID Connect Back-Channel
    /// Logout 1.0 §2.1, Front-Channel Logout 1.0 §3) to the ID token.
    /// </summary>
    public static void SetSessionClaims(ClaimsPrincipal principal, string acr, string? sessionId, string? identityProvider = null)
    {
        if (principal.Identity is not ClaimsIdentity identity)
        {
            return;
        }

        var acrClaim = new Claim(Claims.AuthenticationContextReference, acr);
        acrClaim.SetDestinations(OpenIddictConstants.Destinations.AccessToken, OpenIddictConstants.Destinations.IdentityToken);
        identity.AddClaim(acrClaim);
        if (sessionId is not null)
        {
            var sid = new Claim(SessionId, sessionId);
            sid.SetDestinations(OpenIddictConstants.Destinations.IdentityToken);
            identity.AddClaim(sid);
        }

        if (identityProvider is not null)
        {
            // The upstream provider a federated sign-in came through (docs/identity-federation.md).
            var idp = new Claim(Federation.FederatedSignIn.IdpClaim, identityProvider);
            idp.SetDestinations(OpenIddictConstants.Destinations.AccessToken, OpenIddictConstants.Destinations.IdentityToken);
            identity.AddClaim(idp);
        }
    }

    /// <summary>Carries <c>acr</c> and <c>sid</c> from a code, device code or refresh token over to the tokens issued for it.</summary>
    public static void CarrySessionClaims(ClaimsPrincipal principal, ClaimsPrincipal from)
    {
        if (from.FindFirst(Claims.AuthenticationContextReference)?.Value is { } acr)
        {
            SetSessionClaims(principal, acr, from.FindFirst(SessionId)?.Value, from.FindFirst(Federation.FederatedSignIn.IdpClaim)?.Value);
        }
    }

    /// <summary>The <c>auth_time</c> of a principal read back from one of our codes, refresh or access tokens.</summary>
    public static DateTimeOffset? AuthenticationTime(ClaimsPrincipal principal) =>
        principal.FindFirst(Claims.AuthenticationTime)?.Value is { } value && long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : null;

    /// <summary>
    /// A client acting for itself (client credentials): <c>sub</c> is the client id (RFC 9068 §2.2), and one <c>tenant</c>
    /// claim per tenant the client is registered for (none: the token reaches no tenant's data, deny by default).
    /// </summary>
    public static ClaimsPrincipal ForClient(string clientId, string? displayName, IEnumerable<string> scopes, IEnumerable<string> tenants)
    {
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, clientId).SetClaim(Claims.Name, displayName ?? clientId);
        // A string for one tenant, an array for several (the JWT convention the role claim follows too).
        identity.SetClaims(Tenant, [.. tenants.Distinct(StringComparer.Ordinal)]);
        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(scopes);
        principal.SetDestinations(static _ => [OpenIddictConstants.Destinations.AccessToken]);
        return principal;
    }

    private static IEnumerable<string> Destinations(Claim claim, HashSet<string> scopes)
    {
        // Claims without a destination are left out of every token by OpenIddict.
        yield return OpenIddictConstants.Destinations.AccessToken;
        var inIdentityToken = claim.Type switch
        {
            // OpenID Connect Core §5.4: zoneinfo is a profile claim.
            Claims.Name or Claims.PreferredUsername or Claims.Zoneinfo => scopes.Contains(Scopes.Profile),
            Claims.Email => scopes.Contains(Scopes.Email),
            Claims.Role => scopes.Contains(RolesScope) || scopes.Contains(Scopes.Profile),
            Tenant or BusinessUnit or PermissionModelVersion or Claims.AuthenticationMethodReference => true,
            _ => false,
        };
        if (inIdentityToken)
        {
            yield return OpenIddictConstants.Destinations.IdentityToken;
        }
    }
}
