using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Passkeys;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages.Account;

/// <summary>
/// The second step after the password (and a step-up): an authenticator code, a recovery code, or a passkey of the same user.
/// </summary>
internal sealed class LoginTwoFactorModel(PasswordSignIn signIn, CrmSignInManager signInManager, UserManager<CrmUser> users, PasskeyCeremonies ceremonies, PasskeySignIn passkeys) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty]
    public string? Code { get; set; }

    [BindProperty]
    public bool Recovery { get; set; }

    /// <summary>The passkey answer posted by the page's script.</summary>
    [BindProperty]
    public string? Credential { get; set; }

    public bool Failed { get; private set; }

    public bool PasskeyFailed { get; private set; }

    /// <summary>The user who passed the password step has a passkey: it is offered as the second step.</summary>
    public bool HasPasskeys { get; private set; }

    /// <summary>The user has an authenticator app (or recovery codes): the code form is shown.</summary>
    public bool HasAuthenticator { get; private set; }

    public async Task OnGetAsync() => await LoadAsync();

    public async Task<IActionResult> OnPostAsync()
    {
        if (!string.IsNullOrWhiteSpace(Code) && await signIn.TwoFactorAsync(Code, Recovery, HttpContext))
        {
            return LocalRedirect(LoginModel.SafeReturnUrl(ReturnUrl));
        }

        Failed = true;
        await LoadAsync();
        return Page();
    }

    /// <summary>Options for a second step with one of the pending user's own passkeys (WebAuthn Level 3 §5.1.4 allowCredentials).</summary>
    public async Task<IActionResult> OnPostPasskeyOptionsAsync()
    {
        if (await signInManager.GetTwoFactorAuthenticationUserAsync() is not { } user)
        {
            return BadRequest();
        }

        return Content(await ceremonies.BeginAssertionAsync(user, HttpContext), "application/json");
    }

    /// <summary>The second step with a passkey: only a passkey of the user who passed the password step is accepted.</summary>
    public async Task<IActionResult> OnPostPasskeyAsync()
    {
        if (!string.IsNullOrEmpty(Credential) && Credential.Length <= LoginModel.MaxCredentialLength && await passkeys.SecondFactorAsync(Credential, HttpContext))
        {
            return LocalRedirect(LoginModel.SafeReturnUrl(ReturnUrl));
        }

        PasskeyFailed = true;
        await LoadAsync();
        return Page();
    }

    private async Task LoadAsync()
    {
        // Read from the pending step's own cookie: the page shows what that user can answer with.
        var user = await signInManager.GetTwoFactorAuthenticationUserAsync();
        HasPasskeys = user is not null && (await users.GetPasskeysAsync(user)).Count > 0;
        HasAuthenticator = user is null || await users.GetTwoFactorEnabledAsync(user);
    }
}
