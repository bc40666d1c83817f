using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages.Account;

internal sealed class ResetPasswordModel(UserManager<CrmUser> users) : PageModel
{
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
        var user = User is null ? null : await users.FindByIdAsync(User);
        if (user is null || user.IsDisabled)
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

        Done = true;
        return Page();
    }
}
