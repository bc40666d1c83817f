using Microsoft.AspNetCore;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;
using OpenIddict.Server.AspNetCore;

namespace CrmSecurity.Identity.Pages.Connect;

/// <summary>
/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). A GET only asks for confirmation, so a link on
/// another site cannot sign the user out (§2, the OP should confirm); the POST ends the session and OpenIddict
/// redirects to the client's registered post_logout_redirect_uri (exact match) if one was given.
/// </summary>
internal sealed class LogoutModel(
    SignInManager<CrmUser> signIn, UserManager<CrmUser> users, EndedSessions endedSessions, IOptions<IdentitySettings> settings, AccessEvents events,
    Protocol.BackchannelLogout backchannelLogout) : PageModel
{
    public IReadOnlyList<KeyValuePair<string, string>> Parameters { get; private set; } = [];

    public IActionResult OnGet()
    {
        var request = HttpContext.GetOpenIddictServerRequest();
        Parameters = request is null ? [] : [.. request.GetParameters().Select(p => new KeyValuePair<string, string>(p.Key, (string?)p.Value ?? ""))];
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var userId = users.GetUserId(User);
        var sessionId = User.FindFirst(EndedSessions.SessionIdClaim)?.Value;
        if (sessionId is not null)
        {
            // The session ends on the server too: a copy of this cookie taken before is refused from now on (ASVS V3.3.1).
            await endedSessions.EndAsync(sessionId, settings.Value.Sessions.AbsoluteTimeout, HttpContext.RequestAborted);
        }

        if (userId is not null)
        {
            // OpenID Connect Back-Channel Logout 1.0 §2.7: the clients of this session end theirs; queued, not awaited.
            await backchannelLogout.NotifyAsync(userId, sessionId, HttpContext.RequestAborted);
        }

        await signIn.SignOutAsync();
        if (userId is not null)
        {
            await events.WriteAsync(new AccessEvent
            {
                Timestamp = events.Time.GetUtcNow(),
                UserId = userId,
                Action = AccessActions.Logout,
                ClientId = HttpContext.GetOpenIddictServerRequest()?.ClientId,
                SourceIp = HttpContext.Connection.RemoteIpAddress?.ToString(),
            }, HttpContext.RequestAborted);
        }

        return SignOut(new AuthenticationProperties { RedirectUri = "/account/login" }, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }
}
