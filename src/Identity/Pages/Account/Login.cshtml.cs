using CrmSecurity.Identity.Passkeys;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages.Account;

internal sealed class LoginModel(PasswordSignIn signIn, PasskeyCeremonies ceremonies, PasskeySignIn passkeys) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty]
    public string? Username { get; set; }

    [BindProperty]
    public string? Password { get; set; }

    public bool Failed { get; private set; }

    /// <summary>The passkey answer posted by the page's script (WebAuthn Level 3 §5.1 JSON).</summary>
    [BindProperty]
    public string? Credential { get; set; }

    public bool PasskeyFailed { get; private set; }

    /// <summary>Options for a passwordless sign-in with any discoverable passkey of this relying party.</summary>
    public async Task<IActionResult> OnPostPasskeyOptionsAsync() =>
        Content(await ceremonies.BeginAssertionAsync(user: null, HttpContext), "application/json");

    /// <summary>Passwordless sign-in: the passkey's assertion, checked against this browser's one-time challenge.</summary>
    public async Task<IActionResult> OnPostPasskeyAsync()
    {
        if (!string.IsNullOrEmpty(Credential) && Credential.Length <= MaxCredentialLength && await passkeys.SignInAsync(Credential, HttpContext))
        {
            return LocalRedirect(SafeReturnUrl(ReturnUrl));
        }

        PasskeyFailed = true;
        return Page();
    }

    /// <summary>Longest credential JSON read: a passkey assertion or attestation is a few kilobytes.</summary>
    internal const int MaxCredentialLength = 64 * 1024;

    public async Task<IActionResult> OnPostAsync()
    {
        if (string.IsNullOrEmpty(Username) || string.IsNullOrEmpty(Password))
        {
            Failed = true;
            return Page();
        }

        switch (await signIn.SignInAsync(Username, Password, HttpContext))
        {
            case SignInOutcome.SignedIn:
                return LocalRedirect(SafeReturnUrl(ReturnUrl));
            case SignInOutcome.RequiresTwoFactor:
                return RedirectToPage("/Account/LoginTwoFactor", new { ReturnUrl = SafeReturnUrl(ReturnUrl) });
            default:
                Failed = true;
                Password = null;
                return Page();
        }
    }

    /// <summary>
    /// Only local paths: a return URL never leads off this site (no open redirect, RFC 9700 §4.11, OWASP ASVS 4.0.3 V5.1.5).
    /// Besides <c>//host</c> and <c>/\host</c>, control characters and whitespace are refused: browsers drop a tab or line
    /// break inside a URL, so <c>/&lt;TAB&gt;/evil.example</c> would become <c>//evil.example</c>.
    /// </summary>
    internal static string SafeReturnUrl(string? returnUrl) =>
        returnUrl is { Length: > 0 } && returnUrl[0] == '/'
            && (returnUrl.Length == 1 || (returnUrl[1] != '/' && returnUrl[1] != '\\'))
            && !returnUrl.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))
            ? returnUrl
            : "/"; // the landing page: the areas this person may use
}
