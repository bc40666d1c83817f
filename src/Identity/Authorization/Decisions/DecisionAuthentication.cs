using System.Collections.Concurrent;
using System.Security.Claims;
using CrmSecurity.Identity.Keys;
using CrmSecurity.Identity.Protocol;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
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
        services.AddAuthentication().AddJwtBearer(Scheme);
        services.AddOptions<JwtBearerOptions>(Scheme).Configure<SigningKeyRing, IHttpContextAccessor, IOptions<IdentitySettings>>((options, ring, http, settings) =>
        {
            options.MapInboundClaims = false;
            options.TokenValidationParameters = new TokenValidationParameters
            {
                // RFC 9068 §4: the audience must be validated; every API audience of ours authenticates here and the
                // policy below then requires this API's own, so a wrong token gets 403 rather than a bare 401.
                ValidAudiences = settings.Value.ApiScopes.Select(s => s.Audience).Append(DecisionEndpoints.Audience).Distinct(StringComparer.Ordinal),
                ValidTypes = [JsonWebTokenTypes.AccessToken], // RFC 9068 §4: only at+jwt
                IssuerSigningKeyResolver = (_, _, _, _) => ring.Published.SelectMany(g => new SecurityKey[] { g.Es256.Key, g.Rs256.Key }),
                IssuerValidator = (issuer, _, _) => issuer == ExpectedIssuer(settings.Value, http.HttpContext)
                    ? issuer
                    : throw new SecurityTokenInvalidIssuerException("The token was issued by another server."),
                NameClaimType = Claims.Name,
                RoleClaimType = Claims.Role,
            };
            options.Events = new JwtBearerEvents
            {
                OnTokenValidated = async context =>
                {
                    // A JWT stays valid for local validators until it expires; the decision API also honours
                    // revocation and incident cut-offs (RFC 7009), looked up at most once a second per token.
                    var cache = context.HttpContext.RequestServices.GetRequiredService<DecisionRevocationCache>();
                    if (await cache.IsRevokedAsync(context.Principal!, context.HttpContext.RequestServices, context.HttpContext.RequestAborted))
                    {
                        context.Fail("The token was revoked.");
                    }
                },
                OnForbidden = context =>
                {
                    // RFC 6750 §3.1: insufficient_scope, naming the scope the request needs.
                    context.Response.Headers.WWWAuthenticate = $"Bearer error=\"insufficient_scope\", scope=\"{DecisionEndpoints.Scope}\"";
                    return Task.CompletedTask;
                },
            };
        });

        services.AddAuthorizationBuilder().AddPolicy(DecisionEndpoints.Policy, policy => policy
            .AddAuthenticationSchemes(Scheme)
            .RequireAuthenticatedUser()
            .RequireAssertion(context => DecisionEndpoints.HasScope(context.User) && HasAudience(context.User)));
        return services;
    }

    /// <summary>RFC 7519 §4.1.3: <c>aud</c> is one string or an array; IdentityModel gives one claim per value.</summary>
    public static bool HasAudience(ClaimsPrincipal principal) =>
        principal.FindAll(Claims.Audience).Any(claim => string.Equals(claim.Value, DecisionEndpoints.Audience, StringComparison.Ordinal));

    private static string ExpectedIssuer(IdentitySettings settings, HttpContext? http)
    {
        if (!string.IsNullOrWhiteSpace(settings.Issuer))
        {
            return new Uri(settings.Issuer, UriKind.Absolute).AbsoluteUri;
        }

        var request = http?.Request ?? throw new InvalidOperationException("No request to derive the issuer from.");
        return $"{request.Scheme}://{request.Host}{request.PathBase}/";
    }
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

        var issuedAt = principal.FindFirst(Claims.IssuedAt)?.Value is { } iat && long.TryParse(iat, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : (DateTimeOffset?)null;
        var client = principal.FindFirst(Claims.ClientId)?.Value;
        var revoked = await services.GetRequiredService<RevocationList>().IsRevokedAsync(
            jti, principal.FindFirst(Claims.Subject)?.Value, client is null ? [] : [client], issuedAt, cancellationToken);
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
