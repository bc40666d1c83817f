using System.Security.Claims;
using CrmSecurity.Identity;
using CrmSecurity.Identity.Keys;
using CrmSecurity.Identity.Protocol;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Server.EncryptionService;

/// <summary>
/// How callers of the encryption service authenticate: OAuth access tokens of the in-process OpenID Connect provider,
/// for the audience <see cref="Audience"/>, with one scope per operation.
/// </summary>
internal static class CryptoServiceAuthentication
{
    public const string Scheme = "CryptoService";

    /// <summary>The resource (audience) the crypto scopes grant; configured with the scopes in <c>Identity:ApiScopes</c>.</summary>
    public const string Audience = "crm-security-crypto";

    public const string EncryptScope = "crypto:encrypt";
    public const string DecryptScope = "crypto:decrypt";
    public const string IndexScope = "crypto:index";

    public static void Add(IServiceCollection services)
    {
        services.AddAuthentication().AddJwtBearer(Scheme);
        services.AddOptions<JwtBearerOptions>(Scheme).Configure<SigningKeyRing, IHttpContextAccessor, IOptions<IdentitySettings>>((options, ring, http, settings) =>
        {
            options.MapInboundClaims = false;
            options.TokenValidationParameters = new TokenValidationParameters
            {
                ValidAudience = Audience, // RFC 9068 §4: the token must be meant for this resource
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
                // A signed JWT stays valid until it expires; decrypting is sensitive enough to honour revocation at once.
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

        var policies = services.AddAuthorizationBuilder();
        foreach (var scope in new[] { EncryptScope, DecryptScope, IndexScope })
        {
            policies.AddPolicy(scope, policy => policy
                .AddAuthenticationSchemes(Scheme)
                .RequireAuthenticatedUser()
                .RequireAssertion(context => HasScope(context.User, scope)));
        }
    }

    /// <summary>RFC 9068 §2.2.3: <c>scope</c> is one space-separated claim.</summary>
    public static bool HasScope(ClaimsPrincipal principal, string scope) =>
        principal.FindAll(Claims.Scope).SelectMany(c => c.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Contains(scope, StringComparer.Ordinal);

    /// <summary>The subject of the token: a user id, or the client id for a client acting for itself.</summary>
    public static string Caller(ClaimsPrincipal principal) =>
        principal.FindFirst(Claims.Subject)?.Value ?? principal.FindFirst(Claims.ClientId)?.Value ?? "unknown";

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
