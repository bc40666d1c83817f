using CrmSecurity.Identity.Federation;
using CrmSecurity.Identity.Passkeys;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Pages.Account;

internal sealed class LoginModel(PasswordSignIn signIn, PasskeyCeremonies ceremonies, PasskeySignIn passkeys, IOptions<FederationSettings> federation) : PageModel
{
    /// <summary>The upstream providers offered as "Sign in with ...", by name and display name.</summary>
    public IEnumerable<(string Name, string DisplayName)> Providers =>
        federation.Value.Providers.Select(p => (p.Key, p.Value.DisplayName ?? p.Key));

    /// <summary>Why a sign-in through an upstream provider was refused, as the person reads it.</summary>
    public string? FederationError { get; private set; }

    /// <summary>"Sign in with ...": off to the provider (its OpenID Connect handler adds state, nonce and PKCE).</summary>
    public IActionResult OnPostFederation(string? provider)
    {
        if (provider is null || !federation.Value.Providers.ContainsKey(provider))
        {
            FederationError = "That sign-in provider is not set up here.";
            return Page();
        }

        var back = Url.Page("/Account/Login", "Federated", new { ReturnUrl = SafeReturnUrl(ReturnUrl) });
        return Challenge(new Microsoft.AspNetCore.Authentication.AuthenticationProperties { RedirectUri = back }, FederationServices.Scheme(provider));
    }

    /// <summary>Back from the provider: link or create the account, or say why not.</summary>
    public async Task<IActionResult> OnGetFederatedAsync([FromServices] FederatedSignIn federated)
    {
        var outcome = await federated.CompleteAsync(HttpContext);
        if (outcome.SignedIn)
        {
            return LocalRedirect(SafeReturnUrl(ReturnUrl));
        }

        FederationError = outcome.Refusal;
        return Page();
    }

    /// <summary>The provider's callback was refused (state, nonce, code or an error from the provider).</summary>
    public IActionResult OnGetFederationFailed(string? provider)
    {
        var shown = provider is not null && federation.Value.Providers.TryGetValue(provider, out var settings) ? settings.DisplayName ?? provider : "your company's provider";
        FederationError = $"Sign-in through {shown} did not complete, so you were not signed in. Start again from this page.";
        return Page();
    }

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
