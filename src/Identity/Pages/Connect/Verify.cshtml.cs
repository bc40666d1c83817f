using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Protocol;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Pages.Connect;

/// <summary>
/// The verification page of the device authorization grant (RFC 8628 §3.3): a signed-in user types the code their device
/// shows, sees which client asks for what, and allows or denies. OpenIddict has looked the code up (unknown, expired or
/// used codes give no principal); typing codes is throttled per IP and per user (Throttling, RFC 8628 §5.1); allowing is a
/// form post with an anti-forgery token, so another site cannot approve a device for the user (RFC 8628 §5.4 names
/// remote phishing: the page says to allow only a request the user started).
/// </summary>
internal sealed class VerifyModel(
    UserManager<CrmUser> users,
    SignInManager<CrmUser> signIn,
    IOpenIddictApplicationManager applications,
    ScopeResources scopeResources,
    ClientOnlyScopes clientOnly) : PageModel
{
    private const string Scheme = OpenIddictServerAspNetCoreDefaults.AuthenticationScheme;

    public string ApplicationName { get; private set; } = "";

    public IReadOnlyList<string> Scopes { get; private set; } = [];

    public string UserCode { get; private set; } = "";

    public string? Error { get; private set; }

    [FromQuery(Name = "outcome")]
    public string? Outcome { get; set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (Outcome is "approved" or "denied")
        {
            return Page();
        }

        Outcome = null;
        var user = await SignedInUserAsync();
        if (user is null)
        {
            return Challenge(new AuthenticationProperties { RedirectUri = Request.PathBase + Request.Path + Request.QueryString }, IdentityConstants.ApplicationScheme);
        }

        var request = HttpContext.GetOpenIddictServerRequest();
        if (string.IsNullOrEmpty(request?.UserCode))
        {
            return Page();
        }

        return await ShowAsync();
    }

    public async Task<IActionResult> OnPostAsync([FromForm(Name = "decision")] string? decision)
    {
        Outcome = null;
        var user = await SignedInUserAsync();
        if (user is null)
        {
            return Challenge(new AuthenticationProperties { RedirectUri = Request.PathBase + Request.Path }, IdentityConstants.ApplicationScheme);
        }

        var code = await HttpContext.AuthenticateAsync(Scheme);
        if (!code.Succeeded || code.Principal?.GetClaim(Claims.ClientId) is not { Length: > 0 })
        {
            return Invalid();
        }

        var requested = code.Principal.GetScopes();
        // RFC 8628 §3.3: the user may deny; anything but an explicit "accept" is a refusal (deny by default), and a scope only
        // a client acting for itself may hold is never granted to a user.
        if (!string.Equals(decision, "accept", StringComparison.Ordinal) || clientOnly.FirstIn(requested) is not null)
        {
            // OpenIddict marks the device code rejected: the polling client gets access_denied (RFC 8628 §3.5).
            return Forbid(new AuthenticationProperties { RedirectUri = "/connect/verify?outcome=denied" }, Scheme);
        }

        var session = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        var principal = await ClaimsContract.ForUserAsync(
            HttpContext.RequestServices.GetRequiredService<Authorization.Store.AuthorizationModel>(), user, requested,
            ClaimsContract.AuthenticationMethods(session.Principal!), HttpContext.RequestAborted);
        ClaimsContract.SetAuthenticationTime(principal, CrmSignInManager.AuthenticatedAt(session.Principal!) ?? session.Properties?.IssuedUtc);
        principal.SetResources(await ProtocolEndpoints.ResourcesAsync(scopeResources, requested, HttpContext.RequestAborted));
        // OpenIddict marks the device code authorized with this principal; the next poll gets the tokens.
        return SignIn(principal, new AuthenticationProperties { RedirectUri = "/connect/verify?outcome=approved" }, Scheme);
    }

    private async Task<IActionResult> ShowAsync()
    {
        var code = await HttpContext.AuthenticateAsync(Scheme);
        if (!code.Succeeded || code.Principal?.GetClaim(Claims.ClientId) is not { Length: > 0 } clientId)
        {
            return Invalid();
        }

        var application = await applications.FindByClientIdAsync(clientId, HttpContext.RequestAborted);
        ApplicationName = application is null ? clientId : await applications.GetLocalizedDisplayNameAsync(application, HttpContext.RequestAborted) ?? clientId;
        Scopes = [.. code.Principal.GetScopes()];
        UserCode = NormalizeUserCode.Display(HttpContext.GetOpenIddictServerRequest()?.UserCode);
        return Page();
    }

    private PageResult Invalid()
    {
        // The same answer for a code that never existed, expired or was used: nothing to tell the two apart.
        Error = "That code is not valid. Check the code on your device, or start again there if it has expired.";
        ApplicationName = "";
        return Page();
    }

    private async Task<CrmUser?> SignedInUserAsync()
    {
        var session = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        if (!session.Succeeded)
        {
            return null;
        }

        var user = await users.GetUserAsync(session.Principal!);
        if (user is null || user.IsDisabled)
        {
            await signIn.SignOutAsync();
            return null;
        }

        return user;
    }
}
