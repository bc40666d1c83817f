using System.Collections.Concurrent;
using System.Security.Claims;
using CrmSecurity.Identity.Protocol;
using CrmSecurity.Shared;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Authorization.Decisions;

/// <summary>
/// Bearer authentication of the decision API: access tokens of this server (RFC 9068 <c>at+jwt</c>), signed by a
/// published key of the key ring, issued by this issuer and not revoked. The token must carry scope
/// <c>authz.decide</c> and audience <c>crm-security-authz</c>; any other token of ours authenticates but is refused
/// with 403 <c>insufficient_scope</c> (RFC 6750 §3.1), so a CRM app sees which permission its client lacks.
/// </summary>
internal static class DecisionAuthentication
{
    public const string Scheme = "AuthzDecide";

    public static IServiceCollection AddDecisionApi(this IServiceCollection services)
    {
        services.AddSingleton<DecisionRevocationCache>();
        // RFC 9068 §4: the audience must be validated; every API audience of ours authenticates here and the policy
        // below then requires this API's own, so a wrong token gets 403 rather than a bare 401. Revocation and incident
        // cut-offs (RFC 7009) are looked up at most once a second per token.
        services.AddAuthentication().AddIdentityBearer(
            Scheme,
            settings => settings.ApiScopes.Select(s => s.Audience).Append(DecisionEndpoints.Audience).Distinct(StringComparer.Ordinal),
            (http, principal) => http.RequestServices.GetRequiredService<DecisionRevocationCache>().IsRevokedAsync(principal, http.RequestServices, http.RequestAborted));
        services.PostConfigure<JwtBearerOptions>(Scheme, options => options.Events.OnForbidden = context =>
        {
            // RFC 6750 §3.1: insufficient_scope, naming the scope the request needs.
            context.Response.Headers.WWWAuthenticate = $"Bearer error=\"insufficient_scope\", scope=\"{DecisionEndpoints.Scope}\"";
            return Task.CompletedTask;
        });

        services.AddAuthorizationBuilder().AddPolicy(DecisionEndpoints.Policy, policy => policy
            .AddAuthenticationSchemes(Scheme)
            .RequireAuthenticatedUser()
            // RFC 9068 §2.2.3 / RFC 8693 §4.2: the one space-delimited scope claim holds authz.decide (ScopeClaims).
            .RequireAssertion(context => ScopeClaims.HasScope(context.User, DecisionEndpoints.Scope) && HasAudience(context.User)));
        return services;
    }

    /// <summary>RFC 7519 §4.1.3: <c>aud</c> is one string or an array; IdentityModel gives one claim per value.</summary>
    public static bool HasAudience(ClaimsPrincipal principal) =>
        principal.FindAll(Claims.Audience).Any(claim => string.Equals(claim.Value, DecisionEndpoints.Audience, StringComparison.Ordinal));

}

/// <summary>
/// Remembers for one second that a token (by <c>jti</c>) was not revoked, so the decision API's hot path does not
/// query the revocation tables on every call. A revocation or cut-off therefore takes effect here within a second.
/// Revoked answers are not cached: they stay revoked in the database.
/// </summary>
internal sealed class DecisionRevocationCache(TimeProvider time)
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private const int MaxEntries = 10_000;
    private readonly ConcurrentDictionary<string, long> _checked = new(StringComparer.Ordinal);

    public async ValueTask<bool> IsRevokedAsync(ClaimsPrincipal principal, IServiceProvider services, CancellationToken cancellationToken)
    {
        var jti = principal.FindFirst(Claims.JwtId)?.Value;
        if (jti is not null && _checked.TryGetValue(jti, out var at) && time.GetElapsedTime(at) < Interval)
        {
            return false;
        }

        var revoked = await ResourceServerBearer.IsRevokedAsync(services.GetRequiredService<RevocationList>(), principal, cancellationToken);
        if (!revoked && jti is not null)
        {
            if (_checked.Count >= MaxEntries)
            {
                _checked.Clear(); // bounded: a flood of distinct tokens costs lookups, never memory
            }

            _checked[jti] = time.GetTimestamp();
        }

        return revoked;
    }
}
