using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Pages.Account;
using CrmSecurity.Identity.Protocol;
using CrmSecurity.Identity.Users;

namespace CrmSecurity.Identity.Admin;

internal sealed partial class AdminOperations
{
    /// <summary>
    /// Sends the user a one-time, expiring password-reset link, made by the same machinery as "Forgot password": ASP.NET
    /// Core Identity's data-protected reset token, bound to the user's security stamp (so it works once) and valid for
    /// <c>Identity:Passwords:ResetLinkLifetime</c>. The link goes only into the mail to the user's own address; the admin,
    /// the audit entry and the logs never see it (OWASP ASVS 4.0.3 V2.5.1, V7.1.1), so an admin cannot take over an
    /// account with it. Needs update on system_user covering the user's business unit; nobody sends one to themselves.
    /// </summary>
    public async Task<(PasswordResetLinkView? Sent, AdminProblem? Problem)> SendPasswordResetLinkAsync(AdminGuard guard, string userId, IAccountMail mail, PublicOrigin origin,
        TimeProvider time, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        PasswordResetLinkView? sent = null;
        var problem = await ChangeUserAsync(guard, userId, CrmAction.Update, "password", null, async (context, user, info) =>
        {
            if (user.ApplicationClientId is not null)
            {
                return AdminProblem.Conflict($"'{user.UserName}' is the application user of client '{user.ApplicationClientId}': it signs in with the client's credentials and has no password.");
            }

            if (user.IsDisabled)
            {
                return AdminProblem.Conflict($"'{user.UserName}' is disabled; enable the account first, or a reset link would let nobody in.");
            }

            if (string.IsNullOrWhiteSpace(user.Email))
            {
                return AdminProblem.Conflict($"'{user.UserName}' has no e-mail address to send a reset link to.");
            }

            var expires = time.GetUtcNow() + lifetime;
            var token = await users.GeneratePasswordResetTokenAsync(user);
            await mail.SendPasswordResetAsync(user.Email, user.UserName ?? user.Id, ResetPasswordModel.Link(origin, user.Id, token), cancellationToken);
            sent = new PasswordResetLinkView(user.Email, expires);
            context.Audit(new AuditChange("user.password_reset_link", "system_user", userId, user.UserName!, null,
                new { sent_to = user.Email, expires_at = expires }, TargetUser: userId, Summary: $"password-reset link sent to {user.UserName}"));
            return null;
        }, cancellationToken, allowSelf: false);
        return problem is null ? (sent, null) : (null, problem);
    }
}
