using System.Security.Claims;
using System.Text.Json;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// MFA policy and step-up at the authorization endpoint. The authentication context class (OpenID Connect Core §2
/// <c>acr</c>, §3.1.2.1 <c>acr_values</c>) is one of two values of this service:
/// <list type="bullet">
/// <item><see cref="AcrPassword"/>: a password only (RFC 8176 <c>amr</c> <c>pwd</c>);</item>
/// <item><see cref="AcrMfa"/>: a password and a second factor (<c>amr</c> <c>mfa</c>, with <c>otp</c> for an authenticator code).</item>
/// </list>
/// Our own URNs, not the OpenID EAP ACR Values <c>phr</c>/<c>phrh</c>: those promise phishing resistance, which a TOTP
/// code does not give (a relying party asking for <c>phr</c> must not get a TOTP sign-in). A code is issued only for a
/// session at the level the request and the policy need; a lower session is stepped up (the second step again), a user
/// without a second factor is sent to enrol, <c>prompt=none</c> gets <c>interaction_required</c> (§3.1.2.6). Never let through.
/// </summary>
internal static class StepUp
{
    /// <summary>acr of a password-only sign-in.</summary>
    public const string AcrPassword = "urn:crm-security:acr:pwd";

    /// <summary>acr of a sign-in with a password and a second factor.</summary>
    public const string AcrMfa = "urn:crm-security:acr:mfa";

    /// <summary>The application property that marks a client whose sign-ins all need two-step verification.</summary>
    public const string RequireMfaProperty = "crm_security_require_mfa";

    /// <summary>The claim of the step-up cookie naming the password-only session the second step replaces.</summary>
    public const string ReplacesSessionClaim = "crm_stepup_sid";

    /// <summary>The acr values this provider can satisfy, weakest first (discovery <c>acr_values_supported</c>).</summary>
    public static readonly string[] Supported = [AcrPassword, AcrMfa];

    /// <summary>Checks the <c>Identity:Mfa</c> settings.</summary>
    public static void ValidateSettings(MfaSettings settings, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(errors);
        if (settings.FreshAuthenticationToTurnOff <= TimeSpan.Zero)
        {
            errors.Add("Identity:Mfa:FreshAuthenticationToTurnOff must be positive, e.g. 00:05:00.");
        }

        foreach (var (scope, index) in settings.Scopes.Select((s, i) => (s, i)).Where(s => string.IsNullOrWhiteSpace(s.s)))
        {
            errors.Add($"Identity:Mfa:Scopes:{index} is empty. List scope names, e.g. \"crypto:decrypt\".");
        }

        foreach (var (role, index) in settings.Roles.Select((r, i) => (r, i)).Where(r => string.IsNullOrWhiteSpace(r.r)))
        {
            errors.Add($"Identity:Mfa:Roles:{index} is empty. List role ids as tokens carry them, e.g. \"security_admin\".");
        }
    }

    /// <summary>True when the session (or a principal read from one of our tokens) passed two-step verification (RFC 8176 <c>mfa</c>).</summary>
    public static bool HasMfa(ClaimsPrincipal session) =>
        session.FindAll(CrmSignInManager.AmrClaim).Any(claim => string.Equals(claim.Value, "mfa", StringComparison.Ordinal));

    /// <summary>The acr value a session meets.</summary>
    public static string AcrOf(ClaimsPrincipal session) => HasMfa(session) ? AcrMfa : AcrPassword;

    /// <summary>
    /// Why this authorization request needs two-step verification, or null when it does not: the request's
    /// <c>acr_values</c> (treated as required, not voluntary: a client asking for MFA means it), the client's
    /// <c>RequireMfa</c>, a requested scope in <c>Identity:Mfa:Scopes</c>, or a role of the user in <c>Identity:Mfa:Roles</c>.
    /// </summary>
    public static async Task<string?> WhyRequiredAsync(
        string? acrValues, IEnumerable<string> scopes, IOpenIddictApplicationManager applications, object application, IReadOnlyCollection<string> roles, MfaSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scopes);
        ArgumentNullException.ThrowIfNull(applications);
        ArgumentNullException.ThrowIfNull(settings);
        // OpenID Connect Core §3.1.2.1 acr_values: an unknown value is not ours to satisfy and is ignored; only ours asks for MFA.
        if (acrValues?.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(AcrMfa, StringComparer.Ordinal) == true)
        {
            return "acr_values";
        }

        var properties = await applications.GetPropertiesAsync(application, cancellationToken);
        if (properties.TryGetValue(RequireMfaProperty, out var required) && required.ValueKind == JsonValueKind.True)
        {
            return "client";
        }

        if (scopes.FirstOrDefault(scope => settings.Scopes.Contains(scope, StringComparer.Ordinal)) is { } scope)
        {
            return "scope " + scope;
        }

        return roles.FirstOrDefault(role => settings.Roles.Contains(role, StringComparer.Ordinal)) is { } role ? "role " + role : null;
    }

    /// <summary>
    /// Starts the second step for a signed-in user: the same short-lived cookie the password step sets (so the same page,
    /// throttle and lockout apply), plus the session it will replace, which ends once the second step succeeds.
    /// </summary>
    public static Task BeginAsync(HttpContext http, string userId, string? sessionId)
    {
        ArgumentNullException.ThrowIfNull(http);
        // The shape ASP.NET Core Identity's SignInManager reads back (GetTwoFactorAuthenticationUserAsync): the user id as Name.
        var identity = new ClaimsIdentity(IdentityConstants.TwoFactorUserIdScheme);
        identity.AddClaim(new Claim(ClaimTypes.Name, userId));
        if (sessionId is not null)
        {
            identity.AddClaim(new Claim(ReplacesSessionClaim, sessionId));
        }

        return http.SignInAsync(IdentityConstants.TwoFactorUserIdScheme, new ClaimsPrincipal(identity));
    }
}
