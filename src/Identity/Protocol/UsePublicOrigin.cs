using Microsoft.AspNetCore;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// Puts every OpenIddict request on the public origin: OpenIddict's own base URI comes from the request's Host header,
/// and it is what discovery lists endpoints under and what becomes the issuer when none is set. Rebasing it (and the
/// request URI, so endpoint matching still works) onto <see cref="PublicOrigin"/> means discovery, <c>iss</c> and token
/// validation never follow a Host header an attacker chose (RFC 8414 §3.3, OpenID Connect Discovery §4.3: the issuer
/// is fixed and identical everywhere).
/// </summary>
internal sealed class UsePublicOrigin(PublicOrigin origin) : IOpenIddictServerHandler<ProcessRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessRequestContext>()
            .AddFilter<OpenIddictServerAspNetCoreHandlerFilters.RequireHttpRequest>()
            .UseSingletonHandler<UsePublicOrigin>()
            .SetOrder(OpenIddictServerAspNetCoreHandlers.ResolveRequestUri.Descriptor.Order + 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ProcessRequestContext context)
    {
        var request = context.Transaction.GetHttpRequest();
        if (request is null)
        {
            return ValueTask.CompletedTask;
        }

        var baseUri = origin.Value;
        context.BaseUri = baseUri;
        context.RequestUri = new Uri(baseUri, request.Path.ToUriComponent().TrimStart('/') + request.QueryString.ToUriComponent());
        return ValueTask.CompletedTask;
    }
}
