using Microsoft.AspNetCore;
using System.Security.Claims;
using System.Text.Json.Nodes;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// The parts of the token and userinfo endpoints OpenIddict leaves to the application: who the principal is.
/// OpenIddict has already authenticated the client, checked its permissions, PKCE, redirect URI, code and
/// refresh-token state before these handlers run.
/// </summary>
internal static class ProtocolEndpoints
{
    private const string Scheme = OpenIddictServerAspNetCoreDefaults.AuthenticationScheme;
    private const string ActorClaim = "act";

    public static IEndpointRouteBuilder MapProtocolEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/connect/token", ExchangeAsync).ExcludeFromDescription();
        endpoints.MapMethods("/connect/userinfo", ["GET", "POST"], UserInfoAsync).ExcludeFromDescription();
        return endpoints;
    }

    internal static async Task<Results<SignInHttpResult, ForbidHttpResult>> ExchangeAsync(
        HttpContext http,
        IOpenIddictApplicationManager applications,
        ScopeResources scopes)
    {
        // UserManager is built per request with its validators; client credentials, the hot path, need none of it.
        var users = new Lazy<UserManager<CrmUser>>(() => http.RequestServices.GetRequiredService<UserManager<CrmUser>>());
        var cancellationToken = http.RequestAborted;
        var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("The OpenID Connect request cannot be retrieved.");

        if (request.IsClientCredentialsGrantType())
        {
            var application = await applications.FindByClientIdAsync(request.ClientId!, cancellationToken)
                ?? throw new InvalidOperationException("OpenIddict authenticated a client that does not exist.");
            var principal = ClaimsContract.ForClient(request.ClientId!, await applications.GetDisplayNameAsync(application, cancellationToken), request.GetScopes(),
                await Clients.ClientRegistry.TenantsAsync(applications, application, cancellationToken));
            principal.SetResources(await ResourcesAsync(scopes, principal.GetScopes(), cancellationToken));
            return TypedResults.SignIn(principal, authenticationScheme: Scheme);
        }

        if (request.IsAuthorizationCodeGrantType() || request.IsRefreshTokenGrantType() || request.IsDeviceCodeGrantType())
        {
            // The code, device code (approved on /connect/verify, RFC 8628 §3.5) or refresh token was validated by OpenIddict
            // (signature, expiry, redemption, chain).
            var result = await http.AuthenticateAsync(Scheme);
            var user = await ActiveUserAsync(users.Value, result.Principal);
            if (user is null)
            {
                return Forbid(Errors.InvalidGrant, "The user is no longer allowed to sign in.");
            }

            // Claims are read again from the user, so a refresh carries current roles and permission-model version.
            var model = http.RequestServices.GetRequiredService<AuthorizationModel>();
            var methods = ClaimsContract.AuthenticationMethods(result.Principal!).ToList();
            var application = await applications.FindByClientIdAsync(request.ClientId!, cancellationToken)
                ?? throw new InvalidOperationException("OpenIddict authenticated a client that does not exist.");
            // MFA policy, checked again where every user grant ends (codes, device codes, refresh tokens): a grant that came
            // from a password-only sign-in gets no token for a client, scope or role that needs two-step verification, however
            // it was obtained (OWASP ASVS 4.0.3 V2.1; the authorization endpoint steps up before it issues a code).
            if (await MfaRefusalAsync(http, applications, application, user, result.Principal!.GetScopes(), methods) is { } refusal)
            {
                return refusal;
            }

            var principal = await ClaimsContract.ForUserAsync(model, user, result.Principal!.GetScopes(), methods, cancellationToken);
            ClaimsContract.SetAuthenticationTime(principal, ClaimsContract.AuthenticationTime(result.Principal!));
            ClaimsContract.CarrySessionClaims(principal, result.Principal!);
            principal.SetResources(await ResourcesAsync(scopes, principal.GetScopes(), cancellationToken));
            return TypedResults.SignIn(principal, authenticationScheme: Scheme);
        }

        if (request.IsTokenExchangeGrantType())
        {
            return await TokenExchangeAsync(http, request, users.Value, applications, scopes);
        }

        return Forbid(Errors.UnsupportedGrantType, "The grant type is not supported.");
    }

    /// <summary>
    /// RFC 8693 delegation: a CRM back end that received the user's access token gets a token for another API,
    /// on behalf of that user. The new token keeps the user as <c>sub</c> and names the back end in <c>act</c>
    /// (RFC 8693 §4.1). OpenIddict has validated the subject token (signature, expiry, revocation).
    /// </summary>
    private static async Task<Results<SignInHttpResult, ForbidHttpResult>> TokenExchangeAsync(
        HttpContext http, OpenIddictRequest request, UserManager<CrmUser> users, IOpenIddictApplicationManager applications, ScopeResources scopes)
    {
        var result = await http.AuthenticateAsync(Scheme);
        var subject = result.Principal;
        if (subject is null || !subject.HasTokenType(TokenTypeIdentifiers.AccessToken))
        {
            return Forbid(Errors.InvalidGrant, "The subject token must be an access token issued by this server.");
        }

        // RFC 8693 §5: the server decides who may exchange. Only a party the subject token was issued to
        // (its client) or meant for (an audience the caller serves) may exchange it; anyone else holding a
        // leaked token cannot turn it into new tokens.
        var caller = request.ClientId!;
        if (!subject.HasPresenter(caller) && !subject.HasAudience(caller) && subject.GetClaim(Claims.ClientId) != caller)
        {
            return Forbid(Errors.InvalidGrant, "The subject token was not issued to or for the calling client.");
        }

        var user = await ActiveUserAsync(users, subject);
        if (user is null)
        {
            return Forbid(Errors.InvalidGrant, "The user is no longer allowed to sign in.");
        }

        // OpenIddict has checked the scopes against the caller's permissions. A third-party client (explicit
        // consent) may not widen what the user consented to: only scopes the subject token already had.
        var requested = request.GetScopes();
        var application = await applications.FindByClientIdAsync(caller, http.RequestAborted);
        if (application is not null && await applications.HasConsentTypeAsync(application, ConsentTypes.Explicit, http.RequestAborted)
            && requested.Any(scope => !subject.HasScope(scope)))
        {
            return Forbid(Errors.InvalidScope, "The requested scope exceeds the scope the user consented to.");
        }

        // The same MFA policy as every user grant: a password-only access token is not exchanged for an MFA scope or client.
        var methods = ClaimsContract.AuthenticationMethods(subject).ToList();
        var granted = requested.IsEmpty ? subject.GetScopes() : requested;
        if (application is not null && await MfaRefusalAsync(http, applications, application, user, granted, methods) is { } refusal)
        {
            return refusal;
        }

        var principal = await ClaimsContract.ForUserAsync(http.RequestServices.GetRequiredService<AuthorizationModel>(), user, granted, methods, http.RequestAborted);
        ClaimsContract.SetAuthenticationTime(principal, ClaimsContract.AuthenticationTime(subject));
        ClaimsContract.CarrySessionClaims(principal, subject);
        principal.SetResources(await ResourcesAsync(scopes, principal.GetScopes(), http.RequestAborted));
        // RFC 8693 §4.1 names the claim "act" (OpenIddict's Claims.Actor constant is "actor").
        principal.SetClaim(ActorClaim, new JsonObject { [Claims.Subject] = caller });
        principal.SetDestinations(claim => claim.Type == ActorClaim ? [Destinations.AccessToken] : claim.GetDestinations());
        return TypedResults.SignIn(principal, authenticationScheme: Scheme);
    }

    /// <summary>
    /// MFA policy (<see cref="StepUp"/>) where user grants end: a grant from a sign-in without <c>mfa</c> gets
    /// <c>invalid_grant</c> when the client, a scope or a role of the user needs two-step verification (OWASP ASVS 4.0.3 V2.1).
    /// </summary>
    private static async Task<ForbidHttpResult?> MfaRefusalAsync(
        HttpContext http, IOpenIddictApplicationManager applications, object application, CrmUser user, IEnumerable<string> scopes, List<string> methods)
    {
        if (methods.Contains("mfa", StringComparer.Ordinal))
        {
            return null;
        }

        var model = http.RequestServices.GetRequiredService<AuthorizationModel>();
        var settings = http.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<IdentitySettings>>().Value.Mfa;
        var roles = await model.RolesOfAsync(user.Id, user.PermissionModelVersion, http.RequestAborted);
        return await StepUp.WhyRequiredAsync(null, scopes, applications, application, roles, settings, http.RequestAborted) is { } why
            ? Forbid(Errors.InvalidGrant, $"This grant came from a sign-in without two-step verification, which is required ({why}). Sign in again.")
            : null;
    }

    internal static async Task<Results<Ok<Dictionary<string, object>>, ForbidHttpResult>> UserInfoAsync(HttpContext http, UserManager<CrmUser> users, AuthorizationModel model)
    {
        var result = await http.AuthenticateAsync(Scheme);
        var user = await ActiveUserAsync(users, result.Principal);
        if (user is null)
        {
            return TypedResults.Forbid(Properties(Errors.InvalidToken, "The user is no longer allowed to sign in."), [Scheme]);
        }

        var principal = result.Principal!;
        // OpenID Connect Core §5.4: claims are released according to the scopes of the access token.
        var claims = new Dictionary<string, object>(StringComparer.Ordinal) { [Claims.Subject] = user.Id };
        if (principal.HasScope(Scopes.Profile))
        {
            claims[Claims.Name] = user.DisplayName ?? user.UserName ?? user.Id;
            claims[Claims.PreferredUsername] = user.UserName ?? user.Id;
            claims[ClaimsContract.Tenant] = user.Tenant;
            if (user.BusinessUnit is not null)
            {
                claims[ClaimsContract.BusinessUnit] = user.BusinessUnit;
            }

            claims[ClaimsContract.PermissionModelVersion] = user.PermissionModelVersion;
            if (user.ZoneInfo is not null)
            {
                claims[Claims.Zoneinfo] = user.ZoneInfo; // OpenID Connect Core §5.1
            }
        }

        if (principal.HasScope(Scopes.Email) && user.Email is not null)
        {
            claims[Claims.Email] = user.Email;
            claims[Claims.EmailVerified] = user.EmailConfirmed;
        }

        if (principal.HasScope(ClaimsContract.RolesScope))
        {
            claims[Claims.Role] = await model.RolesOfAsync(user.Id, user.PermissionModelVersion, http.RequestAborted);
        }

        return TypedResults.Ok(claims);
    }

    internal static async Task<CrmUser?> ActiveUserAsync(UserManager<CrmUser> users, ClaimsPrincipal? principal)
    {
        if (principal?.GetClaim(Claims.Subject) is not { } subject)
        {
            return null;
        }

        var user = await users.FindByIdAsync(subject);
        return user is null || user.IsDisabled || await users.IsLockedOutAsync(user) ? null : user;
    }

    internal static Task<List<string>> ResourcesAsync(ScopeResources scopes, IEnumerable<string> granted, CancellationToken cancellationToken) =>
        scopes.ForAsync(granted, cancellationToken);

    private static ForbidHttpResult Forbid(string error, string description) =>
        TypedResults.Forbid(Properties(error, description), [Scheme]);

    private static AuthenticationProperties Properties(string error, string description) => new(new Dictionary<string, string?>
    {
        [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
        [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
    });
}
