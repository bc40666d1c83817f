using System.Security.Claims;
using Microsoft.Extensions.Options;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// Administrative interfaces need a second factor (OWASP ASVS 4.0.3 V4.3.1): a person reaches the admin pages, the admin
/// API, the incident-response API and (through <c>ICrmRights</c>) the auditors' review pages and findings API only with a
/// sign-in that passed two-step verification, which the session and the
/// tokens record as the RFC 8176 <c>amr</c> value <c>mfa</c>. A client acting for itself through its application user
/// (client credentials, <c>sub</c> = <c>client_id</c>) is no person and authenticates with its own credentials.
/// <c>Identity:AdminsRequireSecondFactor</c> turns it on or off; unset, it is on in Production and off elsewhere (the
/// demo's people have no authenticator).
/// </summary>
internal sealed class AdminSecondFactor(IOptions<IdentitySettings> settings, IHostEnvironment environment) : IEndpointFilter
{
    public const string Setting = "Identity:AdminsRequireSecondFactor";

    public const string Explanation =
        "Administrative calls by a person need a sign-in with two-step verification (amr 'mfa'; OWASP ASVS V4.3.1). " +
        "Turn on two-step verification at /account/two-factor, then sign in again with your authenticator code.";

    public bool Required { get; } = settings.Value.AdminsRequireSecondFactor ?? environment.IsProduction();

    /// <summary>Does <paramref name="principal"/> (a session cookie or an access token) meet the requirement?</summary>
    public bool Satisfied(ClaimsPrincipal principal)
    {
        if (!Required)
        {
            return true;
        }

        var subject = principal.FindFirst(Claims.Subject)?.Value;
        var client = principal.FindFirst(Claims.ClientId)?.Value;
        if (subject is not null && string.Equals(subject, client, StringComparison.Ordinal))
        {
            return true; // a client's own token: its application user, not a person
        }

        return principal.FindAll("amr").Any(claim => string.Equals(claim.Value, "mfa", StringComparison.Ordinal));
    }

    /// <summary>For the API groups: 403 with a problem that says what is missing (and, through RefusedAdminCalls, an access event).</summary>
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        Satisfied(context.HttpContext.User)
            ? await next(context)
            : TypedResults.Problem(title: "Two-step verification required", detail: Explanation, statusCode: StatusCodes.Status403Forbidden);
}
