using System.Globalization;
using System.Text;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;
using QRCoder;

namespace CrmSecurity.Identity.Pages.Account;

/// <summary>
/// TOTP enrolment (RFC 6238) with a QR code, recovery codes, and turning it off again. Each change asks for the password
/// again (OWASP ASVS 4.0.3 V3.7.1: a session alone, perhaps a stolen one, does not change how the account signs in) and
/// then ends every other session and grant of the user (V3.3.3).
/// </summary>
[Authorize(AuthenticationSchemes = "Identity.Application")]
internal sealed class TwoFactorModel(
    UserManager<CrmUser> users, IUserStore<CrmUser> store, SignInManager<CrmUser> signIn, CredentialChanges changes, AccessEvents events,
    IOptions<IdentitySettings> settings, TimeProvider time) : PageModel
{
    public bool Enabled { get; private set; }

    public bool Failed { get; private set; }

    public string? Message { get; private set; }

    public string SharedKey { get; private set; } = "";

    public string QrCodeSvgBase64 { get; private set; } = "";

    public int RecoveryCodesLeft { get; private set; }

    public List<string> RecoveryCodes { get; } = [];

    [BindProperty]
    public string? Code { get; set; }

    [BindProperty]
    public string? Password { get; set; }

    public bool WrongPassword { get; private set; }

    /// <summary>The sign-in is older than <c>Identity:Mfa:FreshAuthenticationToTurnOff</c>: sign in again before turning it off.</summary>
    public bool NeedsFreshSignIn { get; private set; }

    /// <summary><c>admin</c> when the admin pages sent the person here: they need a sign-in with two-step verification.</summary>
    [BindProperty(SupportsGet = true, Name = "required")]
    public string? RequiredFor { get; set; }

    public async Task<IActionResult> OnGetAsync()
    {
        var user = await users.GetUserAsync(User);
        return user is null ? Challenge() : await ShowAsync(user);
    }

    public async Task<IActionResult> OnPostEnableAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        if (!await PasswordConfirmedAsync(user))
        {
            return await ShowAsync(user);
        }

        var code = (Code ?? "").Replace(" ", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal);
        if (!await users.VerifyTwoFactorTokenAsync(user, users.Options.Tokens.AuthenticatorTokenProvider, code))
        {
            Failed = true;
            return await ShowAsync(user);
        }

        await users.SetTwoFactorEnabledAsync(user, true);
        RecoveryCodes.AddRange(await users.GenerateNewTwoFactorRecoveryCodesAsync(user, 10) ?? []);
        await changes.EndOtherSessionsAsync(user, keepThisSession: true, "Two-step verification was turned on", HttpContext.RequestAborted);
        await WriteAsync(user, "totp_enabled");
        Message = "Two-step verification is on.";
        return await ShowAsync(user);
    }

    public async Task<IActionResult> OnPostDisableAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        // OWASP ASVS 4.0.3 V3.7.1 (re-authentication before a sensitive change): a session, perhaps an old stolen one, and a
        // phished password do not turn the second factor off; the sign-in itself (password and authenticator) must be recent.
        if (CrmSignInManager.AuthenticatedAt(User) is not { } at || time.GetUtcNow() - at > settings.Value.Mfa.FreshAuthenticationToTurnOff)
        {
            NeedsFreshSignIn = true;
            return await ShowAsync(user);
        }

        if (!await PasswordConfirmedAsync(user))
        {
            return await ShowAsync(user);
        }

        await users.SetTwoFactorEnabledAsync(user, false);
        await users.ResetAuthenticatorKeyAsync(user);
        await changes.EndOtherSessionsAsync(user, keepThisSession: true, "Two-step verification was turned off", HttpContext.RequestAborted);
        await WriteAsync(user, "totp_disabled");
        Message = "Two-step verification is off.";
        return await ShowAsync(user);
    }

    public async Task<IActionResult> OnPostNewRecoveryCodesAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        if (!await PasswordConfirmedAsync(user))
        {
            return await ShowAsync(user);
        }

        RecoveryCodes.AddRange(await users.GenerateNewTwoFactorRecoveryCodesAsync(user, 10) ?? []);
        await changes.EndOtherSessionsAsync(user, keepThisSession: true, "New recovery codes were made; the old ones no longer work", HttpContext.RequestAborted);
        await WriteAsync(user, "recovery_codes_renewed");
        return await ShowAsync(user);
    }

    private async Task<IActionResult> ShowAsync(CrmUser user)
    {
        Enabled = await users.GetTwoFactorEnabledAsync(user);
        RecoveryCodesLeft = await users.CountRecoveryCodesAsync(user);
        if (!Enabled)
        {
            var key = await users.GetAuthenticatorKeyAsync(user);
            if (string.IsNullOrEmpty(key))
            {
                // A key to enrol with. It signs nobody in until the user proves it with a code and turns the step on, so
                // showing this page changes no security stamp and ends no other session.
                key = users.GenerateNewAuthenticatorKey();
                await ((IUserAuthenticatorKeyStore<CrmUser>)store).SetAuthenticatorKeyAsync(user, key, HttpContext.RequestAborted);
                await users.UpdateAsync(user);
            }

            SharedKey = FormatKey(key);
            // Key URI format of Google Authenticator, understood by every TOTP app.
            var uri = string.Create(CultureInfo.InvariantCulture,
                $"otpauth://totp/{Uri.EscapeDataString("CRM security")}:{Uri.EscapeDataString(user.UserName ?? user.Id)}?secret={key}&issuer={Uri.EscapeDataString("CRM security")}&digits=6");
            using var generator = new QRCodeGenerator();
            using var data = generator.CreateQrCode(uri, QRCodeGenerator.ECCLevel.Q);
            var svg = new SvgQRCode(data).GetGraphic(4);
            QrCodeSvgBase64 = Convert.ToBase64String(Encoding.UTF8.GetBytes(svg));
        }

        return Page();
    }

    /// <summary>The password typed with the change; wrong ones count towards lockout like any other password guess.</summary>
    private async Task<bool> PasswordConfirmedAsync(CrmUser user)
    {
        var result = await signIn.CheckPasswordSignInAsync(user, Password ?? "", lockoutOnFailure: true);
        WrongPassword = !result.Succeeded;
        return result.Succeeded;
    }

    private static string FormatKey(string key)
    {
        var builder = new StringBuilder();
        for (var index = 0; index < key.Length; index += 4)
        {
            builder.Append(key.AsSpan(index, Math.Min(4, key.Length - index))).Append(' ');
        }

        return builder.ToString().TrimEnd().ToLowerInvariant();
    }

    private ValueTask WriteAsync(CrmUser user, string details) => events.WriteAccountChangeAsync(user, AccessActions.MfaChange, details, HttpContext);
}
