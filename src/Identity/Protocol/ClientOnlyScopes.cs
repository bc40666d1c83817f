using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// Scopes that only a client acting for itself may hold (<c>Identity:ApiScopes:N:ClientCredentialsOnly</c>), such as
/// <c>events:write</c>: its tokens say "this client reports", so a user's token with it would let any signed-in person
/// speak for the client. No user obtains one in any flow: authorization and pushed authorization
/// requests naming one are refused, token requests asking for one are refused, and as the last line every sign-in of a
/// user (code, refresh, token exchange) carrying one is refused, each with <c>invalid_scope</c> naming the scope
/// (RFC 6749 §4.1.2.1, §5.2).
/// </summary>
internal sealed class ClientOnlyScopes(IOptions<IdentitySettings> settings)
{
    private readonly HashSet<string> _names = settings.Value.ApiScopes
        .Where(scope => scope.ClientCredentialsOnly)
        .Select(scope => scope.Name)
        .ToHashSet(StringComparer.Ordinal);

    /// <summary>The first client-only scope among <paramref name="scopes"/>, or null.</summary>
    public string? FirstIn(IEnumerable<string> scopes) => scopes.FirstOrDefault(_names.Contains);

    public static string Description(string scope) =>
        $"The scope '{scope}' is granted only to a client acting for itself (client_credentials); no user can be given it.";
}

/// <summary>
/// Pushed authorization requests (RFC 9126): a back-channel call, refused at once with <c>invalid_scope</c>. A front-channel
/// authorization request is refused by the authorization page instead, which sends the error back to the client's redirect
/// URI (RFC 6749 §4.1.2.1); OpenIddict's own validation stage shows an error page rather than redirecting.
/// </summary>
internal sealed class RejectClientOnlyScopesInPushedRequests(ClientOnlyScopes clientOnly) : IOpenIddictServerHandler<ValidatePushedAuthorizationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidatePushedAuthorizationRequestContext>()
            .UseSingletonHandler<RejectClientOnlyScopesInPushedRequests>()
            .SetOrder(int.MaxValue - 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ValidatePushedAuthorizationRequestContext context)
    {
        if (clientOnly.FirstIn(context.Request.GetScopes()) is { } scope)
        {
            context.Reject(error: Errors.InvalidScope, description: ClientOnlyScopes.Description(scope));
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>Token requests: a grant for a user (code, refresh, token exchange) asks for a client-only scope.</summary>
internal sealed class RejectClientOnlyScopesInTokenRequests(ClientOnlyScopes clientOnly) : IOpenIddictServerHandler<ValidateTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
            .UseSingletonHandler<RejectClientOnlyScopesInTokenRequests>()
            .SetOrder(OpenIddictServerHandlers.Exchange.ValidateScopePermissions.Descriptor.Order + 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ValidateTokenRequestContext context)
    {
        if (!context.Request.IsClientCredentialsGrantType() && clientOnly.FirstIn(context.Request.GetScopes()) is { } scope)
        {
            context.Reject(error: Errors.InvalidScope, description: ClientOnlyScopes.Description(scope));
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The last line: whatever a grant carried (a refresh token or subject token issued before the scope became client-only,
/// a code), no token is issued to a user with a client-only scope. Only client credentials act for the client itself.
/// </summary>
internal sealed class RejectClientOnlyScopesForUsers(ClientOnlyScopes clientOnly) : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .UseSingletonHandler<RejectClientOnlyScopesForUsers>()
            .SetOrder(OpenIddictServerHandlers.ValidateSignInDemand.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        if (context.Request?.IsClientCredentialsGrantType() == true || context.Principal is not { } principal)
        {
            return ValueTask.CompletedTask;
        }

        if (clientOnly.FirstIn(principal.GetScopes()) is { } scope)
        {
            context.Reject(error: Errors.InvalidScope, description: ClientOnlyScopes.Description(scope));
        }

        return ValueTask.CompletedTask;
    }
}
