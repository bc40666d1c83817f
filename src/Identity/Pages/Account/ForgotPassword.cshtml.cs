using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Protocol;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages.Account;

internal sealed class ForgotPasswordModel(UserManager<CrmUser> users, IAccountMail mail, PublicOrigin origin) : PageModel
{
    [BindProperty]
    public string? Email { get; set; }

    public bool Sent { get; private set; }

    public async Task<IActionResult> OnPostAsync()
    {
        // The same answer whether or not the address is known (no user enumeration).
        Sent = true;
        if (string.IsNullOrWhiteSpace(Email) || await users.FindByEmailAsync(Email.Trim()) is not { IsDisabled: false, ApplicationClientId: null } user)
        {
            return Page();
        }

        var token = await users.GeneratePasswordResetTokenAsync(user);
        // The link is built on the configured public origin, never on this request's Host header: whoever sends the request
        // chooses that header, and a link to their host would hand them the user's reset token.
        var link = ResetPasswordModel.Link(origin, user.Id, token);
        await mail.SendPasswordResetAsync(user.Email!, user.UserName ?? user.Id, link, HttpContext.RequestAborted);
        return Page();
    }
}
