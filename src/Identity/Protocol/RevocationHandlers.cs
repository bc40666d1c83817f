using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>Rejects our own tokens that are on the revocation list or older than a cut-off of their subject or client.</summary>
internal sealed class RejectRevokedTokens(RevocationList revocations) : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseScopedHandler<RejectRevokedTokens>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateAuthorizationEntry.Descriptor.Order + 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.Principal is null || context.Principal.HasTokenType(TokenTypeIdentifiers.Private.ClientAssertion))
        {
            return;
        }

        // RFC 7009 §2: a revoked token is invalid from then on; RFC 7662 §2.2: introspection then says active=false.
        if (await revocations.IsRevokedAsync(context.Principal, context.CancellationToken))
        {
            context.Reject(error: Errors.InvalidToken, description: "The token was revoked.");
        }
    }
}

/// <summary>
/// Replaces OpenIddict's revocation step: a token with a row is revoked through the token manager (a refresh
/// token with its whole authorization chain, RFC 7009 §2.1); a token without one (client-credentials access
/// token) goes on the revocation list by its <c>jti</c>.
/// </summary>
internal sealed class RevokeTokenOrListIt(IOpenIddictTokenManager tokens, RevocationList revocations) : IOpenIddictServerHandler<HandleRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleRevocationRequestContext>()
            .UseScopedHandler<RevokeTokenOrListIt>()
            .SetOrder(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor.Order)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(HandleRevocationRequestContext context)
    {
        var principal = context.GenericTokenPrincipal;
        if (principal is null)
        {
            return;
        }

        var cancellationToken = context.CancellationToken;
        if (principal.GetClaim(Claims.JwtId) is { } jti)
        {
            await revocations.RevokeAsync(jti, principal.GetExpirationDate(), cancellationToken);
        }

        if (principal.GetTokenId() is not { Length: > 0 } identifier || await tokens.FindByIdAsync(identifier, cancellationToken) is not { } token)
        {
            return;
        }

        await tokens.TryRevokeAsync(token, cancellationToken);

        // RFC 7009 §2.1: revoking a refresh token should also invalidate the access tokens of the same grant.
        if (principal.HasTokenType(TokenTypeIdentifiers.RefreshToken) && principal.GetAuthorizationId() is { Length: > 0 } authorization)
        {
            await tokens.RevokeByAuthorizationIdAsync(authorization, cancellationToken);
        }
    }
}
