using System.Globalization;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// Sends account mail (password reset links). The shipped implementation drops each message as a file in a
/// pickup directory (<c>Identity:MailPickupDirectory</c>), the same contract an SMTP relay's pickup folder has;
/// a deployment that sends real mail registers its own. Reset links are secrets: they go only into the message.
/// </summary>
internal interface IAccountMail
{
    Task SendPasswordResetAsync(string toAddress, string userName, Uri resetLink, CancellationToken cancellationToken);
}

internal sealed class PickupDirectoryMail(string directory, TimeProvider time) : IAccountMail
{
    public async Task SendPasswordResetAsync(string toAddress, string userName, Uri resetLink, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        var name = string.Create(CultureInfo.InvariantCulture, $"{time.GetUtcNow():yyyyMMddTHHmmssfff}-{Guid.NewGuid():N}.eml");
        var body = string.Join("\r\n",
            $"To: {toAddress}",
            "Subject: Reset your CRM password",
            "Content-Type: text/plain; charset=utf-8",
            "",
            $"Hello {userName},",
            "",
            "Someone asked to reset the password of your CRM account. If it was you, open this link within one day:",
            resetLink.AbsoluteUri,
            "",
            "If it was not you, ignore this message; your password stays as it is.");
        await File.WriteAllTextAsync(Path.Combine(directory, name), body, cancellationToken);
    }
}
