using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using Microsoft.AspNetCore.Identity;

namespace CrmSecurity.Identity.Users;

internal enum SignInOutcome
{
    Failed,
    SignedIn,
    RequiresTwoFactor,
}

/// <summary>
/// Password sign-in that answers the same way, in comparable time, whether the user name is unknown, the
/// password wrong, the account locked or disabled: every path verifies one password hash (a dummy one when
/// there is no real one to check), and the page shows one message (OWASP ASVS 2.2.1, no user enumeration).
/// </summary>
internal sealed class PasswordSignIn(
    UserManager<CrmUser> users,
    CrmSignInManager signIn,
    IPasswordHasher<CrmUser> hasher,
    AccessEvents events)
{
    private static readonly CrmUser DummyUser = new() { UserName = "dummy" };
    private static string? _dummyHash;

    public async Task<SignInOutcome> SignInAsync(string userName, string password, HttpContext http)
    {
        // " dave " is dave: the throttle counts them as one account, so sign-in must mean the same account.
        userName = userName.Trim();
        var user = await users.FindByNameAsync(userName) ?? (userName.Contains('@', StringComparison.Ordinal) ? await users.FindByEmailAsync(userName) : null);
        if (user is null || user.IsDisabled || await users.IsLockedOutAsync(user))
        {
            // Identity returns at once for these cases; spend the same hashing time so timing tells nothing.
            VerifyDummy(password);
            await WriteAsync(http, user?.Id ?? "unknown", AccessActions.LoginFailed, userName,
                user is null ? "unknown_user" : user.IsDisabled ? "disabled" : "locked_out", Outcomes.Denied, user);
            return SignInOutcome.Failed;
        }

        var result = await signIn.PasswordSignInAsync(user, password, isPersistent: false, lockoutOnFailure: true);
        if (result.Succeeded)
        {
            await WriteAsync(http, user.Id, AccessActions.Login, userName, "amr=pwd", Outcomes.Success, user);
            return SignInOutcome.SignedIn;
        }

        if (result.RequiresTwoFactor)
        {
            return SignInOutcome.RequiresTwoFactor;
        }

        await WriteAsync(http, user.Id, AccessActions.LoginFailed, userName, "wrong_password", Outcomes.Denied, user);
        if (result.IsLockedOut)
        {
            await WriteAsync(http, user.Id, AccessActions.Lockout, userName, "too_many_failures", Outcomes.Denied, user);
        }

        return SignInOutcome.Failed;
    }

    /// <summary>Second step: a TOTP code or a recovery code for the user who passed the password step.</summary>
    public async Task<bool> TwoFactorAsync(string code, bool recovery, HttpContext http)
    {
        var user = await signIn.GetTwoFactorAuthenticationUserAsync();
        if (user is null || user.IsDisabled)
        {
            return false;
        }

        // Recovery codes are stored as XXXXX-XXXXX; authenticator codes are digits that people may type with spaces.
        var normalized = recovery ? code.Trim().ToUpperInvariant() : code.Replace(" ", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal);
        var result = await signIn.SecondFactorSignInAsync(normalized, recovery);
        if (result.Succeeded)
        {
            await WriteAsync(http, user.Id, AccessActions.Login, user.UserName, recovery ? "amr=pwd,mfa; recovery_code" : "amr=pwd,otp,mfa", Outcomes.Success, user);
            return true;
        }

        // A code already used is someone replaying what they saw typed, not a typo (OWASP ASVS 4.0.3 V2.8.5).
        var why = !recovery && OneTimeAuthenticatorCodes.IsReplay(http) ? "authenticator_code_replayed" : "wrong_second_factor";
        await WriteAsync(http, user.Id, AccessActions.LoginFailed, user.UserName, why, Outcomes.Denied, user);
        if (result.IsLockedOut)
        {
            await WriteAsync(http, user.Id, AccessActions.Lockout, user.UserName, "too_many_failures", Outcomes.Denied, user);
        }

        return false;
    }

    private void VerifyDummy(string password)
    {
        _dummyHash ??= hasher.HashPassword(DummyUser, "not-a-real-password-" + Guid.NewGuid());
        hasher.VerifyHashedPassword(DummyUser, _dummyHash, password);
    }

    private ValueTask WriteAsync(HttpContext http, string userId, string action, string? userName, string details, string outcome, CrmUser? user) =>
        events.WriteSignInAsync(http, userId, userName, user?.Tenant, action, details, outcome);
}
