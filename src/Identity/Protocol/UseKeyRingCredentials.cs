using OpenIddict.Abstractions;
using CrmSecurity.Identity.Keys;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// Chooses the keys for each token from the ring's current generation: ID tokens RS256 (the algorithm every
/// relying party must support, OpenID Connect Core §15.1), access tokens ES256 by default (an order of magnitude
/// cheaper to sign than RS256), internal tokens (codes, refresh tokens) ES256 and encrypted with A256KW.
/// Also decides whether a token gets a database row: client-credentials access tokens do not when the
/// revocation list is on, and are revoked through <see cref="RevocationList"/> instead.
/// </summary>
internal sealed class UseKeyRingCredentials(SigningKeyRing ring, IOptions<IdentitySettings> settings) : IOpenIddictServerHandler<GenerateTokenContext>
{
    private readonly bool _accessTokensRs256 = settings.Value.SigningKeys.AccessTokenAlgorithm == SigningKeyRing.Rs256;
    private readonly bool _revocationList = settings.Value.Performance.ClientCredentialsTokenStorage == "RevocationList";

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
            .UseSingletonHandler<UseKeyRingCredentials>()
            .SetOrder(OpenIddictServerHandlers.Protection.AttachSecurityCredentials.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(GenerateTokenContext context)
    {
        var current = ring.Current;
        context.SigningCredentials = context.TokenType switch
        {
            TokenTypeIdentifiers.IdentityToken => current.Rs256,
            TokenTypeIdentifiers.AccessToken when _accessTokensRs256 => current.Rs256,
            _ => current.Es256,
        };

        if (context.EncryptionCredentials is not null)
        {
            context.EncryptionCredentials = current.Encryption;
        }

        if (_revocationList && context.TokenType == TokenTypeIdentifiers.AccessToken && context.Request?.IsClientCredentialsGrantType() == true)
        {
            context.CreateTokenEntry = false;
        }

        return ValueTask.CompletedTask;
    }
}
