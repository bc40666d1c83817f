using CrmSecurity.Identity.Keys;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// Lets another module of the same host act as a resource server for this provider's access tokens: a JwtBearer
/// scheme that trusts the in-process signing keys and issuer, checks one audience, and checks revocation.
/// </summary>
public static class ResourceServerBearer
{
    /// <summary>Adds JwtBearer scheme <paramref name="scheme"/> for access tokens of this server issued for <paramref name="audience"/>.</summary>
    public static AuthenticationBuilder AddIdentityBearer(this AuthenticationBuilder builder, string scheme, string audience)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddJwtBearer(scheme);
        builder.Services.AddOptions<JwtBearerOptions>(scheme).Configure<SigningKeyRing, IHttpContextAccessor, IOptions<IdentitySettings>>((options, ring, http, settings) =>
        {
            options.MapInboundClaims = false;
            options.TokenValidationParameters = new TokenValidationParameters
            {
                ValidAudience = audience, // RFC 9068 §4: the token must be meant for this resource
                ValidTypes = [JsonWebTokenTypes.AccessToken], // RFC 9068 §4: only at+jwt, never an ID token
                IssuerSigningKeyResolver = (_, _, _, _) => ring.Published.SelectMany(g => new SecurityKey[] { g.Es256.Key, g.Rs256.Key }),
                IssuerValidator = (issuer, _, _) => issuer == ExpectedIssuer(settings.Value, http.HttpContext)
                    ? issuer
                    : throw new SecurityTokenInvalidIssuerException("The token was issued by another server."),
                NameClaimType = Claims.Name,
                RoleClaimType = Claims.Role,
            };
            options.Events = new JwtBearerEvents
            {
                // Local validation alone accepts a revoked token until it expires (platform facts); check the list.
                OnTokenValidated = async context =>
                {
                    var principal = context.Principal!;
                    var revocations = context.HttpContext.RequestServices.GetRequiredService<RevocationList>();
                    var issuedAt = principal.FindFirst(Claims.IssuedAt)?.Value is { } iat && long.TryParse(iat, out var seconds)
                        ? DateTimeOffset.FromUnixTimeSeconds(seconds)
                        : (DateTimeOffset?)null;
                    var client = principal.FindFirst(Claims.ClientId)?.Value;
                    if (await revocations.IsRevokedAsync(principal.FindFirst(Claims.JwtId)?.Value, principal.FindFirst(Claims.Subject)?.Value,
                            client is null ? [] : [client], issuedAt, context.HttpContext.RequestAborted))
                    {
                        context.Fail("The token was revoked.");
                    }
                },
            };
        });
        return builder;
    }

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
