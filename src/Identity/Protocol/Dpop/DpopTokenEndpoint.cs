using System.Text.Json;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol.Dpop;

/// <summary>
/// DPoP at the token endpoint (RFC 9449 §5): checks the proof of a token request after the client authenticated, and
/// leaves the proof's key thumbprint in the transaction for <see cref="BindTokensToDpopKey"/>. A request without a proof
/// gets bearer tokens as before, unless the client requires DPoP (§5.2 <c>dpop_bound_access_tokens</c>) or the refresh
/// token it redeems is bound to a key (§5). With <see cref="DpopSettings.RequireNonce"/>, every proof must carry a
/// nonce this server issued (§8).
/// </summary>
internal sealed class ValidateDpopProofAtTokenEndpoint(
    DpopProofs proofs, DpopNonces nonces, IdentityStore store, IOpenIddictApplicationManager applications, IOptions<IdentitySettings> settings)
    : IOpenIddictServerHandler<ProcessAuthenticationContext>
{
    /// <summary>The transaction property holding the thumbprint of the key the tokens are bound to.</summary>
    public const string ThumbprintProperty = "crm_security:dpop_jkt";

    /// <summary>The transaction property holding a nonce to send back in <c>DPoP-Nonce</c>.</summary>
    public const string NonceProperty = "crm_security:dpop_nonce";

    /// <summary>The transaction property telling whether the client is public (its refresh tokens are bound, §5).</summary>
    public const string PublicClientProperty = "crm_security:dpop_public_client";

    /// <summary>The application property that marks a client that must use DPoP.</summary>
    public const string RequireDpopProperty = "crm_security_require_dpop";

    /// <summary>The private claim of a refresh token holding the thumbprint it is bound to (never put in an access or ID token).</summary>
    public const string RefreshTokenThumbprintClaim = "crm_dpop_jkt";

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
            .UseScopedHandler<ValidateDpopProofAtTokenEndpoint>()
            // After client authentication and token validation: the client and the refresh token presented are known, and
            // a proof's jti is only spent for a request that is otherwise valid.
            .SetOrder(int.MaxValue - 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ProcessAuthenticationContext context)
    {
        if (context.EndpointType != OpenIddictServerEndpointType.Token || context.Transaction.GetHttpRequest() is not { } http)
        {
            return;
        }

        var application = string.IsNullOrEmpty(context.ClientId) ? null : await applications.FindByClientIdAsync(context.ClientId, context.CancellationToken);
        var isPublic = application is null || await applications.HasClientTypeAsync(application, ClientTypes.Public, context.CancellationToken);
        var required = application is not null
            && (await applications.GetPropertiesAsync(application, context.CancellationToken)).TryGetValue(RequireDpopProperty, out var flag)
            && flag.ValueKind == JsonValueKind.True;
        var boundTo = context.RefreshTokenPrincipal?.GetClaim(RefreshTokenThumbprintClaim);
        var headers = http.Headers[DpopProofs.Header];
        if (headers.Count == 0)
        {
            if (required)
            {
                // RFC 9449 §5.2 dpop_bound_access_tokens: a client registered for DPoP never gets a bearer token.
                context.Reject(error: DpopProofs.InvalidProof, description: "This client must send a DPoP proof with every token request (RFC 9449 section 5.2).");
            }
            else if (boundTo is not null)
            {
                // RFC 9449 §5: a refresh token bound to a key is redeemed only with a proof of that key.
                context.Reject(error: DpopProofs.InvalidProof, description: "The refresh token is bound to a DPoP key; send a DPoP proof signed with it (RFC 9449 section 5).");
            }

            return;
        }

        var requireNonce = settings.Value.Dpop.RequireNonce;
        var check = proofs.Check(headers, HttpMethods.Post, context.RequestUri ?? new Uri(http.GetEncodedUrl(), UriKind.Absolute), accessToken: null, requireNonce);
        if (requireNonce)
        {
            // RFC 9449 §8.2: a fresh nonce with every answer, error or not, so the client always has one to use next.
            context.Transaction.Properties[NonceProperty] = nonces.Issue();
        }

        if (check.Proof is not { } proof)
        {
            context.Reject(error: check.Error, description: check.Description);
            return;
        }

        if (boundTo is not null && isPublic && !string.Equals(boundTo, proof.Thumbprint, StringComparison.Ordinal))
        {
            // RFC 9449 §5: a public client's refresh token works only with the key it was bound to, so a stolen one is useless.
            context.Reject(error: DpopProofs.InvalidProof, description: "The DPoP proof is signed by another key than the one the refresh token is bound to (RFC 9449 section 5).");
            return;
        }

        // RFC 9449 §11.1: a proof is used once.
        if (!await proofs.TrySpendAsync(store, proof, context.ClientId ?? "", context.CancellationToken))
        {
            context.Reject(error: DpopProofs.InvalidProof, description: "The DPoP proof was already used; sign a new one with a new jti for each request (RFC 9449 section 11.1).");
            return;
        }

        context.Transaction.Properties[ThumbprintProperty] = proof.Thumbprint;
        context.Transaction.Properties[PublicClientProperty] = isPublic;
    }
}

/// <summary>
/// Binds the tokens of a token response to the DPoP key (RFC 9449 §6): the access token gets <c>cnf.jkt</c> (§6.1), the
/// response says <c>token_type: DPoP</c> (§5), and a public client's refresh token is bound to the key (§5; a
/// confidential client's refresh token is already bound to its credentials).
/// </summary>
internal sealed class BindTokensToDpopKey : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .UseSingletonHandler<BindTokensToDpopKey>()
            // After every principal is prepared, before any token is generated.
            .SetOrder(OpenIddictServerHandlers.GenerateAccessToken.Descriptor.Order - 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.EndpointType != OpenIddictServerEndpointType.Token)
        {
            return ValueTask.CompletedTask;
        }

        // A refresh token redeemed by a confidential client carries its old binding in the principal passed through: drop it.
        context.RefreshTokenPrincipal?.RemoveClaims(ValidateDpopProofAtTokenEndpoint.RefreshTokenThumbprintClaim);
        if (!context.Transaction.Properties.TryGetValue(ValidateDpopProofAtTokenEndpoint.ThumbprintProperty, out var value) || value is not string thumbprint)
        {
            return ValueTask.CompletedTask;
        }

        // RFC 9449 §6.1: cnf with the JWK SHA-256 thumbprint (RFC 7638) of the proof's key.
        context.AccessTokenPrincipal?.SetClaim(Claims.Confirmation, JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["jkt"] = thumbprint }));
        if (context.Transaction.Properties.TryGetValue(ValidateDpopProofAtTokenEndpoint.PublicClientProperty, out var isPublic) && isPublic is true)
        {
            context.RefreshTokenPrincipal?.SetClaim(ValidateDpopProofAtTokenEndpoint.RefreshTokenThumbprintClaim, thumbprint);
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>RFC 9449 §5: a DPoP-bound access token is answered with <c>token_type</c> <c>DPoP</c>, so the client uses the DPoP scheme.</summary>
internal sealed class AnswerDpopTokenType : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .UseSingletonHandler<AnswerDpopTokenType>()
            .SetOrder(OpenIddictServerHandlers.AttachSignInParameters.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.EndpointType == OpenIddictServerEndpointType.Token && context.Response.AccessToken is not null
            && context.Transaction.Properties.ContainsKey(ValidateDpopProofAtTokenEndpoint.ThumbprintProperty))
        {
            context.Response.TokenType = DpopProofs.Scheme;
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>RFC 9449 §8.1: sends the nonce the request was given in the <c>DPoP-Nonce</c> header, on success and error alike.</summary>
internal sealed class SendDpopNonce : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .UseSingletonHandler<SendDpopNonce>()
            .SetOrder(int.MinValue + 60_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        if (context.Transaction.Properties.TryGetValue(ValidateDpopProofAtTokenEndpoint.NonceProperty, out var nonce) && nonce is string value
            && context.Transaction.GetHttpRequest()?.HttpContext.Response is { } response)
        {
            response.Headers[DpopProofs.NonceHeader] = value;
            // RFC 9449 §8.1 refers to RFC 9110 §15.5.1 caching rules: a nonce answer is for this client alone.
            response.Headers.CacheControl = "no-store";
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>RFC 9449 §5.1: discovery lists the algorithms accepted in proofs.</summary>
internal sealed class AdvertiseDpop : IOpenIddictServerHandler<HandleConfigurationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleConfigurationRequestContext>()
            .UseSingletonHandler<AdvertiseDpop>()
            .SetOrder(int.MaxValue - 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(HandleConfigurationRequestContext context)
    {
        context.Metadata["dpop_signing_alg_values_supported"] = JsonSerializer.SerializeToElement(DpopProofs.Algorithms);
        return ValueTask.CompletedTask;
    }
}
