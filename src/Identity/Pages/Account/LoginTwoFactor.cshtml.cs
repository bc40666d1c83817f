using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages.Account;

internal sealed class LoginTwoFactorModel(PasswordSignIn signIn) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty]
    public string? Code { get; set; }

    [BindProperty]
    public bool Recovery { get; set; }

    public bool Failed { get; private set; }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!string.IsNullOrWhiteSpace(Code) && await signIn.TwoFactorAsync(Code, Recovery, HttpContext))
        {
            return LocalRedirect(LoginModel.SafeReturnUrl(ReturnUrl));
        }

        Failed = true;
        return Page();
    }
}
