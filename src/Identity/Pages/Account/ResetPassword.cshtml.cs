using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Protocol;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages.Account;

internal sealed class ResetPasswordModel(UserManager<CrmUser> users, CredentialChanges changes, AccessEvents events) : PageModel
{
    /// <summary>The link to this page for one user and reset token (mailed, or printed for the first administrator).</summary>
    public static Uri Link(PublicOrigin origin, string userId, string token) =>
        origin.Link($"account/reset-password?user={Uri.EscapeDataString(userId)}&token={Uri.EscapeDataString(token)}");

    [BindProperty(SupportsGet = true)]
    public new string? User { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    [BindProperty]
    public string? NewPassword { get; set; }

    public bool Done { get; private set; }

    public List<string> Errors { get; } = [];

    public async Task<IActionResult> OnPostAsync()
    {
        var user = User is null ? null : await users.FindByIdAsync(User.Trim());
        if (user is null || user.IsDisabled || user.ApplicationClientId is not null)
        {
            Errors.Add("This reset link is not valid. Ask for a new one.");
            return Page();
        }

        var result = await users.ResetPasswordAsync(user, Token ?? "", NewPassword ?? "");
        if (!result.Succeeded)
        {
            Errors.AddRange(result.Errors.Select(e => e.Code == "InvalidToken" ? "This reset link is not valid. Ask for a new one." : e.Description));
            return Page();
        }

        // OWASP ASVS 4.0.3 V3.3.3: a reset is what a victim does after a compromise; the attacker's sessions and tokens end.
        await changes.EndOtherSessionsAsync(user, keepThisSession: false, "Your password was reset with a mailed link", HttpContext.RequestAborted);
        await events.WriteAccountChangeAsync(user, AccessActions.PasswordChange, "password_reset", HttpContext);
        Done = true;
        return Page();
    }
}
