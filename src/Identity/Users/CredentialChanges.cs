using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Protocol;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// What follows a change of a user's credentials (password changed or reset, two-step verification turned on or off,
/// authenticator reset, recovery codes renewed): whoever held the old credentials loses everything they obtained with
/// them. Every other sign-in session ends (new security stamp, checked on every request), every stored token (codes,
/// refresh and access tokens) and remembered grant is revoked, and a cut-off makes the user's earlier access tokens
/// inactive at this host's APIs, which validate JWTs locally (OWASP ASVS 4.0.3 V3.3.3, V2.5.x; RFC 9700 §4.14: refresh tokens end when the credentials they came from do).
/// The session that made the change is re-issued and stays signed in.
/// </summary>
internal sealed class CredentialChanges(
    UserManager<CrmUser> users,
    SignInManager<CrmUser> signIn,
    IOpenIddictTokenManager tokens,
    IOpenIddictAuthorizationManager authorizations,
    RevocationList revocations,
    IAccountMail mail,
    SignInSessions sessions)
{
    /// <summary>
    /// Ends every other session and grant of <paramref name="user"/>, keeps the caller's own session when it is theirs, and
    /// mails the owner a notice saying <paramref name="change"/> (OWASP ASVS 4.0.3 V2.2.3).
    /// </summary>
    public async Task EndOtherSessionsAsync(CrmUser user, bool keepThisSession, string change, CancellationToken cancellationToken)
    {
        await revocations.CutOffBeforeThisSecondAsync(RevocationCutoffRecord.Subject, user.Id, cancellationToken);
        await tokens.RevokeBySubjectAsync(user.Id, cancellationToken);
        await authorizations.RevokeBySubjectAsync(user.Id, cancellationToken);
        await users.UpdateSecurityStampAsync(user);
        var thisSession = keepThisSession ? signIn.Context.User.FindFirst(EndedSessions.SessionIdClaim)?.Value : null;
        if (keepThisSession)
        {
            await signIn.RefreshSignInAsync(user);
        }

        // The new security stamp has ended them; the list of where the user is signed in says so at once.
        await sessions.ForgetOthersAsync(user.Id, thisSession, cancellationToken);

        if (user.Email is { Length: > 0 } address)
        {
            await mail.SendSecurityNoticeAsync(address, user.UserName ?? user.Id, change, cancellationToken);
        }
    }
}
