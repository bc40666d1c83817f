using CrmSecurity.Identity.Pages.Shared;
using OpenIddict.Server;
using Microsoft.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// Marks an authorization response sent with <c>response_mode=form_post</c> (OAuth 2.0 Form Post Response Mode §2, the
/// default of ASP.NET Core's OpenID Connect handler), so the page's Content-Security-Policy allows the one fixed inline
/// script of OpenIddict's form-post page (<see cref="SecurityHeaders"/>). Every other page, the consent page at the same
/// address included, stays script-free. The mode is known only here: with a pushed request (RFC 9126) it is not in the URL.
/// </summary>
internal sealed class MarkFormPostResponses : IOpenIddictServerHandler<ApplyAuthorizationResponseContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyAuthorizationResponseContext>()
            .UseSingletonHandler<MarkFormPostResponses>()
            .SetOrder(OpenIddict.Server.AspNetCore.OpenIddictServerAspNetCoreHandlers.Authentication.ProcessFormPostResponse.Descriptor.Order - 1) // once the mode is decided
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ApplyAuthorizationResponseContext context)
    {
        if (string.Equals(context.ResponseMode, ResponseModes.FormPost, StringComparison.Ordinal)
            && context.Transaction.GetHttpRequest() is { } request)
        {
            request.HttpContext.Items[SecurityHeaders.FormPostItem] = true;
        }

        return ValueTask.CompletedTask;
    }
}
