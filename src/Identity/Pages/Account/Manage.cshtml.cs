using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages.Account;

[Authorize(AuthenticationSchemes = "Identity.Application")]
internal sealed class ManageModel(UserManager<CrmUser> users, CredentialChanges changes, SignInSessions sessions, AccessEvents events) : PageModel
{
    public string? UserName { get; private set; }

    /// <summary>Where the user is signed in, newest first, with times in the user's own time zone.</summary>
    public List<SessionView> Sessions { get; } = [];

    /// <summary>The user's time zone as shown beside the times.</summary>
    public string ZoneName { get; private set; } = "UTC";

    /// <summary>The person's own time zone, which the page shows times in (UTC on hover).</summary>
    public TimeZoneInfo Zone { get; private set; } = TimeZoneInfo.Utc;

    public string? Message { get; private set; }

    public List<string> Errors { get; } = [];

    [BindProperty]
    public string? CurrentPassword { get; set; }

    [BindProperty]
    public string? NewPassword { get; set; }

    public async Task OnGetAsync()
    {
        if (await users.GetUserAsync(User) is { } user)
        {
            await LoadAsync(user);
        }
    }

    /// <summary>Ends one of the user's own sessions (ASVS V3.3.4); a session id that is not theirs ends nothing.</summary>
    public async Task<IActionResult> OnPostEndSessionAsync(string? session)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        var ended = !string.IsNullOrEmpty(session) && (CurrentSession is null || session != SignInSessions.Handle(CurrentSession))
            && await sessions.EndAsync(user.Id, session, HttpContext.RequestAborted);
        if (ended)
        {
            await events.WriteAccountChangeAsync(user, AccessActions.Logout, "session ended from the account page", HttpContext);
        }

        Message = ended ? "That session is signed out." : "There is no such session of yours to sign out (it may have ended already).";
        await LoadAsync(user);
        return Page();
    }

    /// <summary>Ends every session of the user but this one.</summary>
    public async Task<IActionResult> OnPostEndOtherSessionsAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        var count = await sessions.EndOthersAsync(user.Id, CurrentSession, HttpContext.RequestAborted);
        if (count > 0)
        {
            await events.WriteAccountChangeAsync(user, AccessActions.Logout, $"{count} other sessions ended from the account page", HttpContext);
        }

        Message = count == 0 ? "You are signed in nowhere else." : count == 1 ? "1 other session is signed out." : $"{count} other sessions are signed out.";
        await LoadAsync(user);
        return Page();
    }

    public async Task<IActionResult> OnPostChangePasswordAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        var result = await users.ChangePasswordAsync(user, CurrentPassword ?? "", NewPassword ?? "");
        if (!result.Succeeded)
        {
            Errors.AddRange(result.Errors.Select(e => e.Description));
            await LoadAsync(user);
            return Page();
        }

        // OWASP ASVS 4.0.3 V3.3.3: whoever knew the old password loses the sessions and tokens it got them.
        await changes.EndOtherSessionsAsync(user, keepThisSession: true, "Your password was changed", HttpContext.RequestAborted);
        await events.WriteAccountChangeAsync(user, AccessActions.PasswordChange, null, HttpContext);
        Message = "Your password was changed.";
        await LoadAsync(user);
        return Page();
    }

    private string? CurrentSession => User.FindFirst(EndedSessions.SessionIdClaim)?.Value;

    private async Task LoadAsync(CrmUser user)
    {
        UserName = user.UserName;
        var zone = Shared.PersonTimeZone.Of(user.ZoneInfo);

        ZoneName = CrmSecurity.Shared.LocalTime.Name(zone);
        Zone = zone;
        Sessions.Clear();
        foreach (var session in await sessions.OpenAsync(user.Id, HttpContext.RequestAborted))
        {
            Sessions.Add(new SessionView(
                SignInSessions.Handle(session.SessionId),
                TimeZoneInfo.ConvertTime(session.SignedInAt, zone),
                Browser(session.UserAgent),
                session.SourceIp ?? "unknown",
                Methods(session.Methods),
                session.SessionId == CurrentSession));
        }
    }

    /// <summary>How a session signed in, in words, from its RFC 8176 amr values.</summary>
    private static string Methods(string amr)
    {
        var methods = amr.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var passkey = methods.Contains("hwk") || methods.Contains("swk");
        var password = methods.Contains("pwd");
        return (passkey, password) switch
        {
            (true, true) => "password and passkey",
            (true, false) => "passkey",
            _ when methods.Contains("mfa") => "password and two-step verification",
            _ => "password",
        };
    }

    /// <summary>A short name for the browser a user agent string names.</summary>
    private static string Browser(string? agent) => agent switch
    {
        null or "" => "Unknown browser",
        _ when agent.Contains("Edg/", StringComparison.Ordinal) => "Edge",
        _ when agent.Contains("Firefox/", StringComparison.Ordinal) => "Firefox",
        _ when agent.Contains("Chrome/", StringComparison.Ordinal) || agent.Contains("HeadlessChrome", StringComparison.Ordinal) => "Chrome",
        _ when agent.Contains("Safari/", StringComparison.Ordinal) => "Safari",
        _ => "Other client",
    };

    /// <summary>One open session as the account page shows it.</summary>
    internal sealed record SessionView(string Id, DateTimeOffset SignedInAt, string Browser, string SourceIp, string Methods, bool IsThisOne);
}
