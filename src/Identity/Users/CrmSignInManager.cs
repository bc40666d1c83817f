using System.Globalization;
using System.Security.Claims;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// ASP.NET Core Identity's sign-in with what tokens and sessions need to stay truthful:
/// <list type="bullet">
/// <item>the session cookie records how the user authenticated as RFC 8176 <c>amr</c> values (<c>pwd</c>; after an
/// authenticator code <c>pwd otp mfa</c>; after a recovery code <c>pwd mfa</c>) and when (<c>auth_time</c>, OpenID
/// Connect Core §2), and keeps both when the cookie is re-issued (security-stamp validation, refresh): Identity's own
/// re-issue rebuilt the principal from the user and dropped them, so tokens said <c>["pwd"]</c> after a TOTP sign-in;</item>
/// <item>every failed second factor counts towards lockout, a recovery code as much as an authenticator code
/// (OWASP ASVS 4.0.3 V2.2.1, NIST SP 800-63B §5.2.2).</item>
/// </list>
/// </summary>
internal sealed class CrmSignInManager(
    UserManager<CrmUser> userManager,
    IHttpContextAccessor contextAccessor,
    IUserClaimsPrincipalFactory<CrmUser> claimsFactory,
    IOptions<IdentityOptions> optionsAccessor,
    ILogger<SignInManager<CrmUser>> logger,
    IAuthenticationSchemeProvider schemes,
    IUserConfirmation<CrmUser> confirmation,
    TimeProvider time)
    : SignInManager<CrmUser>(userManager, contextAccessor, claimsFactory, optionsAccessor, logger, schemes, confirmation)
{
    /// <summary>RFC 8176 §2 / OpenID Connect Core §2.</summary>
    public const string AmrClaim = "amr";

    /// <summary>OpenID Connect Core §2: when the user last actively authenticated (seconds since the epoch).</summary>
    public const string AuthTimeClaim = "auth_time";

    /// <summary>The session claims that describe the authentication itself, carried over whenever the cookie is re-issued.</summary>
    public static readonly string[] AuthenticationClaims = [AmrClaim, AuthTimeClaim, EndedSessions.SessionIdClaim, Federation.FederatedSignIn.IdpClaim];

    private static readonly string[] AfterAuthenticator = ["pwd", "otp", "mfa"];

    // NIST SP 800-63B §5.1.2: a recovery code is a look-up secret, not an OTP of RFC 4226/6238, so no "otp" (RFC 8176 §2).
    private static readonly string[] AfterRecoveryCode = ["pwd", "mfa"];

    /// <summary>
    /// The second step for the user who passed the password step: an authenticator code (RFC 6238) or a recovery code,
    /// each failure counted towards lockout.
    /// </summary>
    public async Task<SignInResult> SecondFactorSignInAsync(string code, bool recoveryCode)
    {
        var user = await GetTwoFactorAuthenticationUserAsync();
        if (user is null)
        {
            return SignInResult.Failed;
        }

        if (await PreSignInCheck(user) is { } refused)
        {
            return refused;
        }

        var accepted = recoveryCode
            ? (await UserManager.RedeemTwoFactorRecoveryCodeAsync(user, code)).Succeeded
            : await UserManager.VerifyTwoFactorTokenAsync(user, Options.Tokens.AuthenticatorTokenProvider, code);
        if (!accepted)
        {
            // OWASP ASVS 4.0.3 V2.2.1: a wrong recovery code counts like a wrong password, so guessing ends in lockout.
            await UserManager.AccessFailedAsync(user);
            return await UserManager.IsLockedOutAsync(user) ? SignInResult.LockedOut : SignInResult.Failed;
        }

        await UserManager.ResetAccessFailedCountAsync(user);
        // A step-up (Protocol.StepUp) names the password-only session this sign-in replaces: it ends server-side, so a copy
        // of its cookie is not left open beside the stronger session (OWASP ASVS 4.0.3 V3.3.1).
        var pending = await Context.AuthenticateAsync(IdentityConstants.TwoFactorUserIdScheme);
        var replaced = pending.Principal?.FindFirst(Protocol.StepUp.ReplacesSessionClaim)?.Value;
        await Context.SignOutAsync(IdentityConstants.TwoFactorUserIdScheme);
        await SignInWithClaimsAsync(user, isPersistent: false, Methods(recoveryCode ? AfterRecoveryCode : AfterAuthenticator));
        if (replaced is not null)
        {
            var settings = Context.RequestServices.GetRequiredService<IOptions<IdentitySettings>>().Value;
            await Context.RequestServices.GetRequiredService<EndedSessions>().EndAsync(replaced, settings.Sessions.AbsoluteTimeout, Context.RequestAborted);
        }

        return SignInResult.Success;
    }

    /// <summary>
    /// Signs <paramref name="user"/> in after a verified passkey assertion: alone (passwordless) or as the second step after
    /// the password, with the passkey's RFC 8176 methods (<see cref="Passkeys.PasskeyMethods"/>). Disabled and locked-out
    /// users are refused as at the password step; success resets the failure count as a correct second factor does.
    /// </summary>
    public async Task<SignInResult> PasskeySignInAsync(CrmUser user, UserPasskeyInfo passkey, bool afterPassword)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(passkey);
        if (user.IsDisabled || user.ApplicationClientId is not null)
        {
            return SignInResult.NotAllowed;
        }

        if (await PreSignInCheck(user) is { } refused)
        {
            return refused;
        }

        await UserManager.ResetAccessFailedCountAsync(user);
        string? replaced = null;
        if (afterPassword)
        {
            // As after an authenticator code: a step-up ends the password-only session it replaces (OWASP ASVS 4.0.3 V3.3.1).
            var pending = await Context.AuthenticateAsync(IdentityConstants.TwoFactorUserIdScheme);
            replaced = pending.Principal?.FindFirst(Protocol.StepUp.ReplacesSessionClaim)?.Value;
            await Context.SignOutAsync(IdentityConstants.TwoFactorUserIdScheme);
        }

        await SignInWithClaimsAsync(user, isPersistent: false, Methods(Passkeys.PasskeyMethods.For(passkey, afterPassword)));
        if (replaced is not null)
        {
            var settings = Context.RequestServices.GetRequiredService<IOptions<IdentitySettings>>().Value;
            await Context.RequestServices.GetRequiredService<EndedSessions>().EndAsync(replaced, settings.Sessions.AbsoluteTimeout, Context.RequestAborted);
        }

        return SignInResult.Success;
    }

    /// <summary>
    /// Every sign-in records when it happened and gets a session id of its own (ended server-side at sign-out), unless
    /// the caller carries an earlier authentication over.
    /// </summary>
    public override async Task SignInWithClaimsAsync(CrmUser user, AuthenticationProperties? authenticationProperties, IEnumerable<Claim> additionalClaims)
    {
        ArgumentNullException.ThrowIfNull(user);
        var claims = additionalClaims.ToList();
        if (!claims.Exists(claim => claim.Type == AuthTimeClaim))
        {
            claims.Add(new Claim(AuthTimeClaim, time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64));
        }

        if (!claims.Exists(claim => claim.Type == EndedSessions.SessionIdClaim))
        {
            // A new session: recorded so that its owner sees it on the account page and can end it (ASVS V3.3.4).
            var sessionId = EndedSessions.NewSessionId();
            claims.Add(new Claim(EndedSessions.SessionIdClaim, sessionId));
            var methods = string.Join(' ', claims.Where(claim => claim.Type == AmrClaim).Select(claim => claim.Value));
            await Context.RequestServices.GetRequiredService<SignInSessions>().StartedAsync(user.Id, sessionId, methods, Context, Context.RequestAborted);
        }

        await base.SignInWithClaimsAsync(user, authenticationProperties, claims);
    }

    /// <summary>Re-issues this session's cookie (e.g. after a password change) with the same authentication methods and time.</summary>
    public override async Task RefreshSignInAsync(CrmUser user)
    {
        var current = await Context.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        if (!current.Succeeded || current.Principal is null || UserManager.GetUserId(current.Principal) != user.Id)
        {
            return;
        }

        await SignInWithClaimsAsync(user, current.Properties, Carried(current.Principal));
    }

    /// <summary>The authentication claims of a session principal, to put on the principal that replaces it.</summary>
    public static List<Claim> Carried(ClaimsPrincipal principal) =>
        [.. principal.Claims.Where(claim => AuthenticationClaims.Contains(claim.Type)).Select(claim => new Claim(claim.Type, claim.Value, claim.ValueType))];

    /// <summary>When the session's user last actively authenticated, or null for a session that does not say.</summary>
    public static DateTimeOffset? AuthenticatedAt(ClaimsPrincipal principal) =>
        principal.FindFirst(AuthTimeClaim)?.Value is { } value && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : null;

    private static Claim[] Methods(string[] methods) => [.. methods.Select(method => new Claim(AmrClaim, method))];
}
