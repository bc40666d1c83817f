using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages.Account;

[Authorize(AuthenticationSchemes = "Identity.Application")]
internal sealed class ManageModel(UserManager<CrmUser> users, CredentialChanges changes, AccessEvents events) : PageModel
{
    public string? UserName { get; private set; }

    public string? Message { get; private set; }

    public List<string> Errors { get; } = [];

    [BindProperty]
    public string? CurrentPassword { get; set; }

    [BindProperty]
    public string? NewPassword { get; set; }

    public async Task OnGetAsync() => UserName = (await users.GetUserAsync(User))?.UserName;

    public async Task<IActionResult> OnPostChangePasswordAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        UserName = user.UserName;
        var result = await users.ChangePasswordAsync(user, CurrentPassword ?? "", NewPassword ?? "");
        if (!result.Succeeded)
        {
            Errors.AddRange(result.Errors.Select(e => e.Description));
            return Page();
        }

        // OWASP ASVS 4.0.3 V3.3.3: whoever knew the old password loses the sessions and tokens it got them.
        await changes.EndOtherSessionsAsync(user, keepThisSession: true, "Your password was changed", HttpContext.RequestAborted);
        await events.WriteAsync(new AccessEvent
        {
            Timestamp = events.Time.GetUtcNow(),
            UserId = user.Id,
            UserName = user.UserName,
            Tenant = user.Tenant,
            Action = AccessActions.PasswordChange,
            SourceIp = HttpContext.Connection.RemoteIpAddress?.ToString(),
        }, HttpContext.RequestAborted);
        Message = "Your password was changed.";
        return Page();
    }
}
