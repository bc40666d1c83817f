using Microsoft.AspNetCore;
using CrmSecurity.Identity.Events;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>Writes a <c>token_issue</c> / <c>token_refresh</c> / <c>token_exchange</c> event for each token response.</summary>
internal sealed class WriteTokenIssuedEvent(AccessEvents events) : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .UseSingletonHandler<WriteTokenIssuedEvent>()
            .SetOrder(OpenIddictServerHandlers.GenerateIdentityToken.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.EndpointType != OpenIddictServerEndpointType.Token || context.Request is not { } request)
        {
            return;
        }

        var principal = context.AccessTokenPrincipal ?? context.IssuedTokenPrincipal;
        var action = request.GrantType switch
        {
            GrantTypes.RefreshToken => AccessActions.TokenRefresh,
            GrantTypes.TokenExchange => AccessActions.TokenExchange,
            _ => AccessActions.TokenIssue,
        };

        var http = context.Transaction.GetHttpRequest()?.HttpContext;
        IdentityMetrics.TokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", request.GrantType));
        await events.WriteAsync(new AccessEvent
        {
            Timestamp = events.Time.GetUtcNow(),
            UserId = principal?.GetClaim(Claims.Subject) ?? request.ClientId ?? "unknown",
            Action = action,
            // A client serving several tenants has one tenant claim each (OpenIddict's GetClaim refuses several): name them all.
            Tenant = principal?.GetClaims(ClaimsContract.Tenant) is { Length: > 0 } tenants ? string.Join(',', tenants) : null,
            UserName = principal?.GetClaim(Claims.PreferredUsername),
            ClientId = request.ClientId,
            SourceIp = http?.Connection.RemoteIpAddress?.ToString(),
            Details = $"grant_type={request.GrantType}; scope={string.Join(' ', principal?.GetScopes() ?? [])}",
        }, context.CancellationToken);
    }
}

/// <summary>Writes a <c>token_rejected</c> event (outcome <c>denied</c>) for each token-endpoint error: wrong secret, reused code, ...</summary>
internal sealed class WriteTokenRejectedEvent(AccessEvents events) : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .UseSingletonHandler<WriteTokenRejectedEvent>()
            .SetOrder(int.MinValue + 50_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        if (string.IsNullOrEmpty(context.Error))
        {
            return;
        }

        var http = context.Transaction.GetHttpRequest()?.HttpContext;
        await events.WriteAsync(new AccessEvent
        {
            Timestamp = events.Time.GetUtcNow(),
            UserId = context.Request?.ClientId ?? "unknown",
            Action = AccessActions.TokenRejected,
            ClientId = context.Request?.ClientId,
            SourceIp = http?.Connection.RemoteIpAddress?.ToString(),
            Outcome = Outcomes.Denied,
            // How the client tried to authenticate, never with what: the secret or the signed assertion stays out of the trail.
            Details = $"grant_type={context.Request?.GrantType}; client_auth={ClientAuthentication(context.Request)}; error={context.Error}",
        }, context.CancellationToken);
    }

    private static string ClientAuthentication(OpenIddictRequest? request) => request switch
    {
        { ClientAssertion.Length: > 0 } => "private_key_jwt",
        { ClientSecret.Length: > 0 } => "client_secret",
        _ => "none",
    };
}

/// <summary>Writes a <c>token_revoke</c> event for each revocation request that was accepted.</summary>
internal sealed class WriteTokenRevokedEvent(AccessEvents events) : IOpenIddictServerHandler<HandleRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleRevocationRequestContext>()
            .UseSingletonHandler<WriteTokenRevokedEvent>()
            .SetOrder(RevokeTokenOrListIt.Descriptor.Order + 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(HandleRevocationRequestContext context)
    {
        var principal = context.GenericTokenPrincipal;
        var http = context.Transaction.GetHttpRequest()?.HttpContext;
        await events.WriteAsync(new AccessEvent
        {
            Timestamp = events.Time.GetUtcNow(),
            UserId = principal?.GetClaim(Claims.Subject) ?? context.Request?.ClientId ?? "unknown",
            Action = AccessActions.TokenRevoke,
            ClientId = context.Request?.ClientId,
            SourceIp = http?.Connection.RemoteIpAddress?.ToString(),
            Details = $"token_type={principal?.GetTokenType()}",
        }, context.CancellationToken);
    }
}
