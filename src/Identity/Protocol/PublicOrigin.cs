using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// The public origin of the service: the issuer OpenIddict publishes and stamps into tokens, and the base of every link
/// the service mails. It comes from <c>Identity:Issuer</c> (required in Production); outside Production, when that is
/// empty, from the host's own first listening address (0.0.0.0 and [::] shown as localhost). Never from the request's
/// Host header, which whoever sends the request chooses: a reset link built from it hands the reset token to the
/// attacker's host (OWASP ASVS 4.0.3 V5.1.5 / host header injection; RFC 8414 §3.3 the issuer is fixed).
/// </summary>
internal sealed class PublicOrigin(IOptions<IdentitySettings> settings, IServiceProvider services)
{
    private static readonly string[] AnyAddress = ["0.0.0.0", "[::]", "::", "+", "*"];
    private Uri? _value;

    /// <summary>The origin with a trailing slash, e.g. <c>https://login.example.com/</c>.</summary>
    public Uri Value => _value ??= Resolve();

    /// <summary>An absolute URI of this service for <paramref name="relative"/> (a path without a leading slash, with its query).</summary>
    public Uri Link(string relative) => new(Value, relative.TrimStart('/'));

    /// <summary>
    /// Whether the origin is known: <c>Identity:Issuer</c> is set, or this host listens. A verb has no server, so outside
    /// Production it knows the origin only from the setting.
    /// </summary>
    public bool IsKnown => (settings.Value.Issuer is { } issuer && !string.IsNullOrWhiteSpace(issuer))
        || services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses.Count > 0;

    private Uri Resolve()
    {
        if (settings.Value.Issuer is { Length: > 0 } issuer && !string.IsNullOrWhiteSpace(issuer))
        {
            return WithTrailingSlash(new Uri(issuer.Trim(), UriKind.Absolute));
        }

        // Addresses are known once the server listens (port 0 gets its real port then); requests come only after that.
        var address = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("The public origin is not known yet: set Identity:Issuer, or ask once the server listens.");
        var binding = BindingAddress.Parse(address);
        var host = AnyAddress.Contains(binding.Host, StringComparer.Ordinal) ? "localhost" : binding.Host;
        var builder = new UriBuilder(binding.Scheme, host.Trim('[', ']'), binding.Port, binding.PathBase);
        return WithTrailingSlash(builder.Uri);
    }

    private static Uri WithTrailingSlash(Uri uri) =>
        uri.AbsolutePath.EndsWith('/') ? uri : new Uri(uri.GetLeftPart(UriPartial.Path) + "/", UriKind.Absolute);
}
