using CrmSecurity.Shared;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Crypto.Service;

/// <summary>
/// How callers of the encryption service authenticate: OAuth access tokens of the host's token issuer, for the audience
/// <see cref="Audience"/>, with one scope per operation.
/// </summary>
internal static class CryptoServiceAuthentication
{
    public const string Scheme = "CryptoService";

    /// <summary>The resource (audience) the crypto scopes grant; configured with the scopes in <c>Identity:ApiScopes</c>.</summary>
    public const string Audience = "crm-security-crypto";

    public const string EncryptScope = "crypto:encrypt";
    public const string DecryptScope = "crypto:decrypt";
    public const string IndexScope = "crypto:index";

    /// <summary>
    /// Moves stored values to the current key version. Its own scope, implied by no other (least privilege): a rotation
    /// job needs neither plaintexts (<see cref="DecryptScope"/>) nor values of its own choosing (<see cref="EncryptScope"/>),
    /// and a client holding only this scope can do neither. Registered client-credentials-only: no user needs it.
    /// </summary>
    public const string RewrapScope = "crypto:rewrap";

    /// <summary>
    /// Crypto-shreds data subjects: irreversible, so a scope of its own that no other implies, and client-credentials-only
    /// (a privacy officer's tool or the CRM's erasure job, not a user's browser).
    /// </summary>
    public const string ShredScope = "crypto:shred";

    /// <summary>
    /// The admin API (<c>/crypto/v1/admin</c>: the blind-index registry). Implied by no other scope, and never enough on its
    /// own: the caller's privileges in the authorization model decide (<see cref="ICryptoAdministrators"/>), so a CRM app's
    /// client registered with it by mistake still changes nothing.
    /// </summary>
    public const string AdminScope = "crypto:admin";

    /// <param name="services">The host's services.</param>
    /// <param name="bearer">
    /// Registers the bearer scheme (name, audience) against the host's issuer: RFC 9068 §4 audience and type, revocation
    /// honoured at once (decrypting is sensitive enough not to cache it).
    /// </param>
    public static void Add(IServiceCollection services, Action<AuthenticationBuilder, string, string> bearer)
    {
        bearer(services.AddAuthentication(), Scheme, Audience);

        var policies = services.AddAuthorizationBuilder();
        foreach (var scope in new[] { EncryptScope, DecryptScope, IndexScope, RewrapScope, ShredScope, AdminScope })
        {
            policies.AddPolicy(scope, policy => policy
                .AddAuthenticationSchemes(Scheme)
                .RequireAuthenticatedUser()
                .RequireAssertion(context => ScopeClaims.HasScope(context.User, scope)));
        }
    }
}
