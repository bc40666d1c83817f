using CrmSecurity.Identity.Clients;
using Microsoft.IdentityModel.JsonWebTokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// For a client whose keys are published at a <c>jwks_uri</c>, the client assertion's signature is checked against the keys
/// fetched from there (<see cref="ClientJwksFetcher"/>) instead of a JWKS stored with the registration. The fetch happens
/// here, asynchronously and before the signature check, because the token handler's key resolver is synchronous; the
/// resolver then only hands over what was fetched. Which client's keys are used is decided by the assertion's <c>iss</c>,
/// as OpenIddict does; OpenIddict still checks afterwards that <c>iss</c> = <c>sub</c> = the authenticating client
/// (RFC 7523 §3 items 1-2), so an assertion naming another client gains nothing.
/// </summary>
internal sealed class ResolveRemoteClientKeys(IOpenIddictApplicationManager applications, ClientJwksFetcher fetcher) : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseScopedHandler<ResolveRemoteClientKeys>()
            .SetOrder(AcceptClientAssertionTypes.Descriptor.Order + 100)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.ValidTokenTypes.Count != 1 || !context.ValidTokenTypes.Contains(OpenIddictConstants.TokenTypeIdentifiers.Private.ClientAssertion)
            || context.TokenValidationParameters is not { } parameters || string.IsNullOrEmpty(context.Token))
        {
            return;
        }

        JsonWebToken token;
        try
        {
            // Read only to find whose keys to use; nothing in it is trusted until the signature is verified with them.
            token = new JsonWebToken(context.Token);
        }
        catch (ArgumentException)
        {
            return; // not a JWS: OpenIddict's own validation refuses it
        }

        if (string.IsNullOrEmpty(token.Issuer)
            || await applications.FindByClientIdAsync(token.Issuer, context.CancellationToken) is not { } application)
        {
            return;
        }

        var properties = await applications.GetPropertiesAsync(application, context.CancellationToken);
        if (!properties.TryGetValue(ClientJwksUri.Property, out var property) || property.GetString() is not { Length: > 0 } uri)
        {
            return; // keys registered inline: OpenIddict's resolver reads them from the registration
        }

        var kid = token.TryGetHeaderValue<string>(JwtHeaderParameterNames.Kid, out var value) && !string.IsNullOrEmpty(value) ? value : null;
        var keys = await fetcher.KeysAsync(token.Issuer, uri, kid, context.CancellationToken);
        // Replaces OpenIddict's resolver, which would read the registration's placeholder set (ClientJwksUri.UnusableKeySet).
        parameters.IssuerSigningKeyResolver = (_, _, _, _) => keys;
        parameters.IssuerSigningKeys = [];
        parameters.IssuerSigningKey = null;
    }
}
