using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol.Dpop;

/// <summary>
/// RFC 9449 §7.1 at the userinfo endpoint, which OpenIddict serves itself: takes the token of
/// <c>Authorization: DPoP &lt;token&gt;</c> (OpenIddict 7.9 reads only the Bearer scheme).
/// </summary>
internal sealed class ExtractDpopUserInfoToken : IOpenIddictServerHandler<ExtractUserInfoRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ExtractUserInfoRequestContext>()
            .UseSingletonHandler<ExtractDpopUserInfoToken>()
            // After OpenIddict's own extraction of a Bearer token.
            .SetOrder(int.MaxValue - 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ExtractUserInfoRequestContext context)
    {
        if (context.Request is { AccessToken: null } request && context.Transaction.GetHttpRequest() is { } http
            && http.Headers.Authorization is { Count: 1 } authorization && authorization[0] is { } value
            && value.StartsWith(DpopProofs.Scheme + " ", StringComparison.OrdinalIgnoreCase))
        {
            request.AccessToken = value[(DpopProofs.Scheme.Length + 1)..].Trim();
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// RFC 9449 §7 at the userinfo endpoint: a DPoP-bound token only with the DPoP scheme and a proof of its key for this
/// request (with <c>ath</c>); sent as Bearer it is refused (§7.2), like at every other API of the host.
/// </summary>
internal sealed class ValidateDpopAtUserInfo(DpopProofs proofs, IdentityStore store) : IOpenIddictServerHandler<ProcessAuthenticationContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
            .UseScopedHandler<ValidateDpopAtUserInfo>()
            // After the access token was validated (signature, lifetime, revocation): only then is a proof spent.
            .SetOrder(int.MaxValue - 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ProcessAuthenticationContext context)
    {
        if (context.EndpointType != OpenIddictServerEndpointType.UserInfo || context.AccessTokenPrincipal is not { } principal
            || context.Transaction.GetHttpRequest() is not { } http || context.AccessToken is not { } token)
        {
            return;
        }

        var usedDpop = http.Headers.Authorization.ToString().StartsWith(DpopProofs.Scheme + " ", StringComparison.OrdinalIgnoreCase);
        var thumbprint = DpopResourceServer.Thumbprint(principal);
        if (thumbprint is null)
        {
            if (usedDpop)
            {
                context.Reject(error: Errors.InvalidToken, description: "The access token is not DPoP-bound; send it with the Bearer scheme (RFC 9449 section 7.1).");
            }

            return;
        }

        if (!usedDpop)
        {
            // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused.
            context.Reject(error: Errors.InvalidToken, description: "The access token is bound to a DPoP key; send it with the DPoP scheme and a proof (RFC 9449 section 7.2).");
            return;
        }

        var uri = context.RequestUri ?? new Uri(http.Scheme + "://" + http.Host + http.PathBase + http.Path);
        var check = proofs.Check(http.Headers[DpopProofs.Header], http.Method, uri, token, requireNonce: false);
        if (check.Proof is not { } proof)
        {
            context.Reject(error: check.Error, description: check.Description);
            return;
        }

        // RFC 9449 §7.1: the proof's key is the one the token is bound to; §11.1: each proof once.
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(proof.Thumbprint), Encoding.ASCII.GetBytes(thumbprint)))
        {
            context.Reject(error: DpopProofs.InvalidProof, description: "The DPoP proof is signed by another key than the one the access token is bound to (RFC 9449 section 7.1).");
            return;
        }

        if (!await proofs.TrySpendAsync(store, proof, principal.GetClaim(Claims.ClientId) ?? "", context.CancellationToken))
        {
            context.Reject(error: DpopProofs.InvalidProof, description: "The DPoP proof was already used; sign a new one for each request (RFC 9449 section 11.1).");
        }
    }
}

/// <summary>
/// OpenIddict 7.9 knows only certificate-bound tokens (RFC 8705 <c>cnf.x5t#S256</c>) and throws on any other <c>cnf</c>
/// when it validates a token at its own endpoints (userinfo, introspection, revocation). For a DPoP-bound token
/// (<c>cnf.jkt</c> only) its check is turned off for that one token: the DPoP binding is checked by
/// <see cref="ValidateDpopAtUserInfo"/> instead, and introspection and revocation are by the client, not the key holder.
/// </summary>
internal sealed class LeaveDpopBindingToDpopHandlers : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseSingletonHandler<LeaveDpopBindingToDpopHandlers>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateProofOfPossession.Descriptor.Order - 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.Principal is { } principal && DpopResourceServer.Thumbprint(principal) is { Length: > 0 }
            && !(principal.GetClaim(Claims.Confirmation) ?? "").Contains("x5t#S256", StringComparison.Ordinal))
        {
            context.DisableProofOfPossessionValidation = true;
        }

        return ValueTask.CompletedTask;
    }
}
