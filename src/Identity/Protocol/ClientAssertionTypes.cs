using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// Which JWTs are read as client assertions (<c>private_key_jwt</c>). OpenIddict 7 accepts only the explicit type
/// <c>client-authentication+jwt</c> of draft-ietf-oauth-rfc7523bis §4, which RFC 7523 §2.2 and OpenID Connect Core §9 do
/// not require and which the client libraries in use do not send (they send <c>JWT</c> or no <c>typ</c>). This widens the
/// accepted types to those, and still refuses a JWT that declares another explicit type (an access token, a DPoP proof,
/// a request object): a token made for another purpose is never taken as a proof of the client's identity.
/// It also pins the signature algorithms to the asymmetric ones, so neither <c>none</c> nor an HMAC keyed with something
/// public can pass, whatever keys a client registered (RFC 8725 §3.1, §3.2).
/// </summary>
internal sealed class AcceptClientAssertionTypes : IOpenIddictServerHandler<ValidateTokenContext>
{
    /// <summary>Signature algorithms a client assertion may use (RFC 7518 §3.1, asymmetric only).</summary>
    public static readonly string[] Algorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

    /// <summary>Values of <c>typ</c> read as a client assertion; compared ignoring case (RFC 7515 §4.1.9).</summary>
    private static readonly string[] Types = ["client-authentication+jwt", "application/client-authentication+jwt", "JWT", "application/jwt"];

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseSingletonHandler<AcceptClientAssertionTypes>()
            .SetOrder(OpenIddictServerHandlers.Protection.ResolveTokenValidationParameters.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.ValidTokenTypes.Count != 1 || !context.ValidTokenTypes.Contains(OpenIddictConstants.TokenTypeIdentifiers.Private.ClientAssertion)
            || context.TokenValidationParameters is not { } parameters)
        {
            return ValueTask.CompletedTask;
        }

        // Remembered for the token response: a failure from here on is a failed client authentication (RFC 7523 §3.2).
        context.Transaction.Properties[ClientAssertionFailures.Property] = ClientAssertionFailures.Validating;

        // OpenIddict builds these parameters for this one validation, so changing them affects no other token.
        parameters.ValidAlgorithms = Algorithms;
        parameters.TypeValidator = (type, token, _) =>
            string.IsNullOrEmpty(type) ? "JWT" // no typ is what RFC 7523 §2.2 allows; read like the generic "JWT"
            : Types.Contains(type, StringComparer.OrdinalIgnoreCase) ? type
            : throw new SecurityTokenInvalidTypeException($"A JWT of type '{type}' is not a client assertion.") { InvalidType = type };

        // RFC 7523 §3 item 3: the server is the audience. OpenIddict 7 accepts its issuer identifier only, as
        // draft-ietf-oauth-rfc7523bis asks; OpenID Connect Core §9 says the audience SHOULD be the token endpoint URL,
        // which is what client libraries send. Both name this server and nothing else, so both are accepted.
        if ((context.Options.Issuer ?? context.BaseUri) is { } origin)
        {
            foreach (var endpoint in context.Options.TokenEndpointUris)
            {
                context.ValidAudiences.Add((endpoint.IsAbsoluteUri ? endpoint : new Uri(origin, endpoint)).AbsoluteUri);
            }
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// OpenIddict 7 names a validated JWT's token type from its <c>typ</c> header, and takes <c>JWT</c> for an identity token.
/// When only a client assertion was expected (and <see cref="AcceptClientAssertionTypes"/> let through only the types
/// client libraries send for one), the principal is a client assertion.
/// </summary>
internal sealed class MarkClientAssertionPrincipal : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseSingletonHandler<MarkClientAssertionPrincipal>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateIdentityModelToken.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.ValidTokenTypes.Count == 1 && context.ValidTokenTypes.Contains(OpenIddictConstants.TokenTypeIdentifiers.Private.ClientAssertion)
            && context.Principal is { } principal)
        {
            principal.SetTokenType(OpenIddictConstants.TokenTypeIdentifiers.Private.ClientAssertion);
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// RFC 7523 §3.2 and RFC 6749 §5.2: a client assertion that fails validation (signature, type, audience, issuer, lifetime)
/// is a failed client authentication, answered with <c>invalid_client</c>. OpenIddict 7 reports some of these failures as
/// <c>invalid_token</c> or <c>invalid_grant</c>, which tells the client (and the access event) the wrong thing.
/// </summary>
internal sealed class ClientAssertionFailures : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    public const string Property = "crm_security:client_assertion";
    public const string Validating = "validating";
    public const string Accepted = "accepted";

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .UseSingletonHandler<ClientAssertionFailures>()
            // Before the token_rejected event is written (WriteTokenRejectedEvent) and the response is sent.
            .SetOrder(WriteTokenRejectedEvent.Descriptor.Order - 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        if (!string.IsNullOrEmpty(context.Error) && context.Error != OpenIddictConstants.Errors.InvalidClient
            && context.Transaction.Properties.TryGetValue(Property, out var state) && Validating.Equals(state))
        {
            context.Response.Error = OpenIddictConstants.Errors.InvalidClient;
        }

        return ValueTask.CompletedTask;
    }
}
