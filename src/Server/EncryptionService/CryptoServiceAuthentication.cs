using System.Security.Claims;
using CrmSecurity.Server.Hosting;
using CrmSecurity.Shared;
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

    public static void Add(IServiceCollection services, IConfiguration configuration)
    {
        // RFC 9068 §4 audience and type; revocation honoured at once (decrypting is sensitive enough not to cache it).
        services.AddAuthentication().AddHostBearer(configuration, Scheme, Audience);

        var policies = services.AddAuthorizationBuilder();
        foreach (var scope in new[] { EncryptScope, DecryptScope, IndexScope })
        {
            policies.AddPolicy(scope, policy => policy
                .AddAuthenticationSchemes(Scheme)
                .RequireAuthenticatedUser()
                .RequireAssertion(context => ScopeClaims.HasScope(context.User, scope)));
        }
    }

    /// <summary>The subject of the token: a user id, or the client id for a client acting for itself.</summary>
    public static string Caller(ClaimsPrincipal principal) =>
        principal.FindFirst(Claims.Subject)?.Value ?? principal.FindFirst(Claims.ClientId)?.Value ?? "unknown";
}
