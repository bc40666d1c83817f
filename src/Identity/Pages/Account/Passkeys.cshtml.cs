using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Passkeys;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Pages.Account;

/// <summary>
/// The signed-in user's passkeys: add (named), list, rename, remove. Adding and removing change how the account can be
/// signed in to, so both need a recent sign-in (OWASP ASVS 4.0.3 V3.7.1, the same window as turning two-step verification
/// off, <c>Identity:Mfa:FreshAuthenticationToTurnOff</c>), end the user's other sessions and are written as
/// <c>mfa_change</c> access events. Every post carries the anti-forgery token (Razor Pages validate it).
/// </summary>
[Authorize(AuthenticationSchemes = "Identity.Application")]
internal sealed class PasskeysModel(
    UserManager<CrmUser> users,
    PasskeyCeremonies ceremonies,
    CredentialChanges changes,
    IdentityStore store,
    AccessEvents events,
    TimeProvider time,
    IOptions<IdentitySettings> settings) : PageModel
{
    /// <summary>Longest passkey name kept.</summary>
    public const int MaxNameLength = 60;

    public List<PasskeyView> Passkeys { get; } = [];

    public string ZoneName { get; private set; } = "UTC";

    public TimeZoneInfo Zone { get; private set; } = TimeZoneInfo.Utc;

    public string? Message { get; private set; }

    public string? Error { get; private set; }

    public bool NeedsFreshSignIn { get; private set; }

    public PasskeyView? ToRemove { get; private set; }

    public int FreshMinutes => (int)Math.Ceiling(settings.Value.Mfa.FreshAuthenticationToTurnOff.TotalMinutes);

    [BindProperty]
    public string? Name { get; set; }

    [BindProperty]
    public string? Credential { get; set; }

    [BindProperty]
    public string? Id { get; set; }

    [BindProperty]
    public bool Confirm { get; set; }

    public async Task<IActionResult> OnGetAsync() =>
        await users.GetUserAsync(User) is { } user ? await ShowAsync(user) : Challenge();

    /// <summary>
    /// Options for registering a passkey (WebAuthn Level 3 §5.1.3), for the signed-in user only: the page's script asks for
    /// them with the form's anti-forgery token, so another site cannot start a registration in the user's session.
    /// </summary>
    public async Task<IActionResult> OnPostCreationOptionsAsync()
    {
        if (await users.GetUserAsync(User) is not { } user)
        {
            return Challenge();
        }

        if (!IsFresh())
        {
            // RFC 9457 problem details naming what is missing.
            return new ObjectResult(new ProblemDetails
            {
                Status = StatusCodes.Status403Forbidden,
                Title = "Sign in again to add a passkey.",
                Detail = $"Adding a passkey needs a sign-in within the last {FreshMinutes} minutes.",
            })
            { StatusCode = StatusCodes.Status403Forbidden, ContentTypes = { "application/problem+json" } };
        }

        return Content(await ceremonies.BeginRegistrationAsync(user, HttpContext), "application/json");
    }

    public async Task<IActionResult> OnPostRegisterAsync()
    {
        if (await users.GetUserAsync(User) is not { } user)
        {
            return Challenge();
        }

        var name = Name?.Trim();
        if (NameError(name) is { } error)
        {
            Error = error;
            return await ShowAsync(user);
        }

        if (!IsFresh())
        {
            NeedsFreshSignIn = true;
            return await ShowAsync(user);
        }

        var result = string.IsNullOrEmpty(Credential) || Credential.Length > LoginModel.MaxCredentialLength
            ? null
            : await ceremonies.FinishRegistrationAsync(user, Credential, HttpContext);
        if (result is not { Succeeded: true })
        {
            await events.WriteAccountChangeAsync(user, AccessActions.MfaChange, "passkey_registration_refused", HttpContext);
            Error = "The passkey was not added: your device's answer did not match this page's request. Try again.";
            return await ShowAsync(user);
        }

        result.Passkey.Name = name;
        var stored = await users.AddOrUpdatePasskeyAsync(user, result.Passkey);
        if (!stored.Succeeded)
        {
            Error = "The passkey was not added: " + string.Join(" ", stored.Errors.Select(e => e.Description));
            return await ShowAsync(user);
        }

        // A new way into the account: sessions elsewhere (perhaps the one that was stolen) end, as when MFA is turned on.
        await changes.EndOtherSessionsAsync(user, keepThisSession: true, "A passkey was added", HttpContext.RequestAborted);
        await events.WriteAccountChangeAsync(user, AccessActions.MfaChange, $"passkey_registered: {name}", HttpContext);
        Message = $"The passkey “{name}” was added. You can now sign in with it.";
        return await ShowAsync(user);
    }

    public async Task<IActionResult> OnPostRenameAsync()
    {
        if (await users.GetUserAsync(User) is not { } user)
        {
            return Challenge();
        }

        var name = Name?.Trim();
        if (NameError(name) is { } error)
        {
            Error = error;
            return await ShowAsync(user);
        }

        if (await FindAsync(user) is not { } passkey)
        {
            Error = "There is no such passkey of yours (it may have been removed).";
            return await ShowAsync(user);
        }

        var old = passkey.Name;
        passkey.Name = name;
        await users.AddOrUpdatePasskeyAsync(user, passkey);
        await events.WriteAccountChangeAsync(user, AccessActions.MfaChange, $"passkey_renamed: {old} -> {name}", HttpContext);
        Message = $"The passkey is now called “{name}”.";
        return await ShowAsync(user);
    }

    public async Task<IActionResult> OnPostRemoveAsync()
    {
        if (await users.GetUserAsync(User) is not { } user)
        {
            return Challenge();
        }

        if (await FindAsync(user) is not { } passkey)
        {
            Error = "There is no such passkey of yours (it may have been removed already).";
            return await ShowAsync(user);
        }

        // OWASP ASVS 4.0.3 V3.7.1: as for turning two-step verification off, a recent sign-in, not just a session.
        if (!IsFresh())
        {
            NeedsFreshSignIn = true;
            return await ShowAsync(user);
        }

        if (!Confirm)
        {
            await ShowAsync(user);
            ToRemove = Passkeys.Find(p => p.Id == Id);
            return Page();
        }

        var id = PasskeyIds.Encode(passkey.CredentialId);
        await users.RemovePasskeyAsync(user, passkey.CredentialId);
        await store.PasskeyUses.Where(u => u.CredentialId == id).ExecuteDeleteAsync(HttpContext.RequestAborted);
        await changes.EndOtherSessionsAsync(user, keepThisSession: true, "A passkey was removed", HttpContext.RequestAborted);
        await events.WriteAccountChangeAsync(user, AccessActions.MfaChange, $"passkey_removed: {passkey.Name}", HttpContext);
        Message = $"The passkey “{passkey.Name}” was removed. It no longer signs you in.";
        return await ShowAsync(user);
    }

    private bool IsFresh() =>
        CrmSignInManager.AuthenticatedAt(User) is { } at && time.GetUtcNow() - at <= settings.Value.Mfa.FreshAuthenticationToTurnOff;

    private async Task<UserPasskeyInfo?> FindAsync(CrmUser user) =>
        PasskeyIds.TryDecode(Id, out var credentialId) ? await users.GetPasskeyAsync(user, credentialId) : null;

    /// <summary>What is wrong with a passkey name, naming the field, or null.</summary>
    private static string? NameError(string? name) => name switch
    {
        null or "" => "Name: give the passkey a name, e.g. “Work laptop”.",
        { Length: > MaxNameLength } => $"Name: at most {MaxNameLength} characters.",
        _ when name.Any(char.IsControl) => "Name: use letters, digits, spaces and punctuation only.",
        _ => null,
    };

    private async Task<IActionResult> ShowAsync(CrmUser user)
    {
        Zone = Shared.PersonTimeZone.Of(user.ZoneInfo);
        ZoneName = CrmSecurity.Shared.LocalTime.Name(Zone);
        var uses = await store.PasskeyUses.AsNoTracking().Where(u => u.UserId == user.Id)
            .ToDictionaryAsync(u => u.CredentialId, u => u.LastUsedAt, HttpContext.RequestAborted);
        Passkeys.Clear();
        var row = 0;
        foreach (var passkey in (await users.GetPasskeysAsync(user)).OrderBy(p => p.CreatedAt))
        {
            var id = PasskeyIds.Encode(passkey.CredentialId);
            Passkeys.Add(new PasskeyView(id, ++row, passkey.Name ?? "Unnamed passkey", passkey.IsBackupEligible, passkey.CreatedAt,
                uses.TryGetValue(id, out var used) ? used : null));
        }

        return Page();
    }

    /// <summary>One passkey as the page shows it.</summary>
    internal sealed record PasskeyView(string Id, int Row, string Name, bool Synced, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt);
}
