using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using OpenIddict.Server;

namespace CrmSecurity.Identity.Keys;

/// <summary>
/// Puts the ring's published keys into OpenIddict's options (JWKS, validation of our own tokens) and tells the
/// options monitor to rebuild them whenever the published set changes, so a rotation needs no restart.
/// Which key signs is decided per token by <see cref="Protocol.UseKeyRingCredentials"/>, not by list order.
/// </summary>
internal sealed class KeyRingOptionsSetup(SigningKeyRing ring)
    : IConfigureOptions<OpenIddictServerOptions>, IOptionsChangeTokenSource<OpenIddictServerOptions>
{
    public string Name => Options.DefaultName;

    public IChangeToken GetChangeToken() => ring.ChangeToken;

    public void Configure(OpenIddictServerOptions options)
    {
        foreach (var generation in ring.Published)
        {
            options.SigningCredentials.Add(generation.Es256);
            options.SigningCredentials.Add(generation.Rs256);
            options.EncryptionCredentials.Add(generation.Encryption);
        }
    }
}
