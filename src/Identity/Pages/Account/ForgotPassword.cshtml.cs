using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages.Account;

internal sealed class ForgotPasswordModel(UserManager<CrmUser> users, IAccountMail mail) : PageModel
{
    [BindProperty]
    public string? Email { get; set; }

    public bool Sent { get; private set; }

    public async Task<IActionResult> OnPostAsync()
    {
        // The same answer whether or not the address is known (no user enumeration).
        Sent = true;
        if (string.IsNullOrWhiteSpace(Email) || await users.FindByEmailAsync(Email) is not { IsDisabled: false } user)
        {
            return Page();
        }

        var token = await users.GeneratePasswordResetTokenAsync(user);
        var link = new Uri($"{Request.Scheme}://{Request.Host}{Request.PathBase}/account/reset-password?user={Uri.EscapeDataString(user.Id)}&token={Uri.EscapeDataString(token)}");
        await mail.SendPasswordResetAsync(user.Email!, user.UserName ?? user.Id, link, HttpContext.RequestAborted);
        return Page();
    }
}
