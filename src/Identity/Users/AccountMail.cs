using System.Globalization;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// Sends account mail (password reset links, security notices). The shipped implementation drops each message as a
/// file in a pickup directory (<c>Identity:MailPickupDirectory</c>), the same contract an SMTP relay's pickup folder
/// has; a deployment that sends real mail registers its own. Reset links are secrets: they go only into the message.
/// </summary>
internal interface IAccountMail
{
    Task SendPasswordResetAsync(string toAddress, string userName, Uri resetLink, CancellationToken cancellationToken);

    /// <summary>
    /// Tells the owner that how their account signs in changed (OWASP ASVS 4.0.3 V2.2.3, V2.5.5), so a change they did
    /// not make does not go unnoticed. It holds no link: a notice should not teach people to click mailed links.
    /// </summary>
    Task SendSecurityNoticeAsync(string toAddress, string userName, string change, CancellationToken cancellationToken);
}

/// <summary>
/// The pickup directory is made 0700 and each message 0600: a message holds a live reset link, so only the service's own
/// account (and the relay that runs as it) may read it (OWASP ASVS 4.0.3 V8.1.x).
/// </summary>
internal sealed class PickupDirectoryMail(string directory, TimeProvider time, TimeSpan resetLinkLifetime) : IAccountMail
{
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public Task SendPasswordResetAsync(string toAddress, string userName, Uri resetLink, CancellationToken cancellationToken) =>
        WriteAsync(toAddress, "Reset your CRM password",
        [
            $"Hello {userName},",
            "",
            $"Someone asked to reset the password of your CRM account. If it was you, open this link within {Describe(resetLinkLifetime)}:",
            resetLink.AbsoluteUri,
            "",
            "If it was not you, ignore this message; your password stays as it is.",
        ], cancellationToken);

    public Task SendSecurityNoticeAsync(string toAddress, string userName, string change, CancellationToken cancellationToken) =>
        WriteAsync(toAddress, "Security notice: your CRM sign-in changed",
        [
            $"Hello {userName},",
            "",
            $"{change} at {time.GetUtcNow():yyyy-MM-dd HH:mm} UTC. Your other sign-in sessions were ended.",
            "",
            "If it was not you, reset your password from the sign-in page at once and tell your security team.",
        ], cancellationToken);

    private static string Describe(TimeSpan lifetime) => lifetime switch
    {
        { TotalDays: 1 } => "one day",
        { TotalHours: var hours } when hours >= 1 && hours == Math.Floor(hours) => string.Create(CultureInfo.InvariantCulture, $"{hours} hours"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{Math.Ceiling(lifetime.TotalMinutes)} minutes"),
    };

    private async Task WriteAsync(string toAddress, string subject, string[] lines, CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, OwnerOnlyDirectory);
        }

        var name = string.Create(CultureInfo.InvariantCulture, $"{time.GetUtcNow():yyyyMMddTHHmmssfff}-{Guid.NewGuid():N}.eml");
        // Header values come from the user record; a line break there must not start a header of its own.
        var body = string.Join("\r\n", [$"To: {OneLine(toAddress)}", $"Subject: {subject}", "Content-Type: text/plain; charset=utf-8", "", .. lines]);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, Options = FileOptions.Asynchronous };
        if (!OperatingSystem.IsWindows())
        {
            // Created with these permissions, never widened and narrowed later: no moment where another account can open it.
            options.UnixCreateMode = OwnerOnlyFile;
        }

        await using var stream = new FileStream(Path.Combine(directory, name), options);
        await using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        await writer.WriteAsync(body.AsMemory(), cancellationToken);
    }

    private static string OneLine(string value) => value.ReplaceLineEndings(" ");
}
