using System.Security.Claims;
using CrmSecurity.Identity.Keys;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// Lets a module of the same host act as a resource server for this provider's access tokens: a JwtBearer scheme
/// that trusts the in-process signing keys and issuer, checks the audience, and checks revocation. Every API of the
/// host (admin, decisions, analyzer, encryption service) authenticates through this one definition, DPoP-bound tokens
/// (RFC 9449) included.
/// </summary>
public static class ResourceServerBearer
{
    /// <summary>Adds JwtBearer scheme <paramref name="scheme"/> for access tokens of this server issued for <paramref name="audience"/>.</summary>
    /// <param name="builder">The authentication builder.</param>
    /// <param name="scheme">The scheme name.</param>
    /// <param name="audience">The one audience (resource) the tokens must carry.</param>
    public static AuthenticationBuilder AddIdentityBearer(this AuthenticationBuilder builder, string scheme, string audience) =>
        builder.AddIdentityBearer(scheme, _ => [audience]);

    /// <summary>
    /// The same with several accepted audiences and, optionally, a revocation check of the caller's own (for example
    /// cached); without one, every request asks the <see cref="RevocationList"/>.
    /// </summary>
    internal static AuthenticationBuilder AddIdentityBearer(
        this AuthenticationBuilder builder,
        string scheme,
        Func<IdentitySettings, IEnumerable<string>> audiences,
        Func<HttpContext, ClaimsPrincipal, ValueTask<bool>>? isRevoked = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddJwtBearer(scheme);
        builder.Services.TryAddSingleton<PublicOrigin>();
        builder.Services.AddOptions<JwtBearerOptions>(scheme).Configure<SigningKeyRing, PublicOrigin, IOptions<IdentitySettings>>((options, ring, origin, settings) =>
        {
            options.MapInboundClaims = false;
            options.TokenValidationParameters = new TokenValidationParameters
            {
                ValidAudiences = audiences(settings.Value).ToArray(), // RFC 9068 §4: the token must be meant for this resource
                ValidTypes = [JsonWebTokenTypes.AccessToken], // RFC 9068 §4: only at+jwt, never an ID token
                IssuerSigningKeyResolver = (_, _, _, _) => ring.Published.SelectMany(g => new SecurityKey[] { g.Es256.Key, g.Rs256.Key }),
                // RFC 9068 §4 / RFC 8414 §3.3: the issuer is the configured public origin, never the Host of the request.
                IssuerValidator = (issuer, _, _) => issuer == origin.Value.AbsoluteUri
                    ? issuer
                    : throw new SecurityTokenInvalidIssuerException("The token was issued by another server."),
                NameClaimType = Claims.Name,
                RoleClaimType = Claims.Role,
            };
            options.Events = new JwtBearerEvents
            {
                // RFC 9449 §7.1: tokens also come as Authorization: DPoP, with a proof of the key they are bound to.
                OnMessageReceived = Dpop.DpopResourceServer.OnMessageReceived,
                OnChallenge = Dpop.DpopResourceServer.OnChallenge,
                // Local validation alone accepts a revoked token until it expires (RFC 7009 §2.2 leaves self-contained
                // tokens to the resource server): check the revocation list and the incident cut-offs.
                OnTokenValidated = async context =>
                {
                    var revoked = isRevoked is null
                        ? await IsRevokedAsync(context.HttpContext.RequestServices.GetRequiredService<RevocationList>(), context.Principal!, context.HttpContext.RequestAborted)
                        : await isRevoked(context.HttpContext, context.Principal!);
                    if (revoked)
                    {
                        context.Fail("The token was revoked.");
                        return;
                    }

                    // RFC 9449 §7: a DPoP-bound token only with a proof of its key; checked after revocation, so a
                    // revoked token does not spend a proof.
                    await Dpop.DpopResourceServer.CheckAsync(context);
                },
            };
        });
        return builder;
    }

    /// <summary>Whether the token (its <c>jti</c>, or its user or client by a cut-off after its <c>iat</c>) was revoked.</summary>
    internal static ValueTask<bool> IsRevokedAsync(RevocationList revocations, ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        var issuedAt = principal.FindFirst(Claims.IssuedAt)?.Value is { } iat && long.TryParse(iat, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : (DateTimeOffset?)null;
        var client = principal.FindFirst(Claims.ClientId)?.Value;
        return new ValueTask<bool>(revocations.IsRevokedAsync(principal.FindFirst(Claims.JwtId)?.Value, principal.FindFirst(Claims.Subject)?.Value,
            client is null ? [] : [client], issuedAt, cancellationToken));
    }
}
