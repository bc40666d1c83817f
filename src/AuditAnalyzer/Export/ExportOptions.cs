using CrmSecurity.AuditAnalyzer.Policy;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>Findings export to SIEMs, bound from <c>AuditAnalyzer:Export</c>.</summary>
public sealed class ExportOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "AuditAnalyzer:Export";

    /// <summary>
    /// Finding changes younger than this are not exported yet: the scorer stamps a change before its transaction
    /// commits, so a younger stamp may still be overtaken by an older one. Longer than a scoring transaction.
    /// </summary>
    public TimeSpan SettleTime { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the forwarder looks for new finding changes (and renews its lease).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long the forwarding lease stays with an instance that stops renewing it.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>First wait before a retry; doubled on each further attempt up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between retries (also caps a destination's Retry-After).</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Identifies this instance in the lease table; empty for host name, process id and a random suffix.</summary>
    public string? InstanceId { get; set; }

    /// <summary>CEF over syslog.</summary>
    public SyslogOptions Syslog { get; set; } = new();

    /// <summary>Signed webhooks (Standard Webhooks).</summary>
    public List<WebhookOptions> Webhooks { get; set; } = [];
}

/// <summary>CEF over syslog (RFC 5424 messages, UDP or TCP), bound from <c>AuditAnalyzer:Export:Syslog</c>.</summary>
public sealed class SyslogOptions
{
    /// <summary>Whether findings are forwarded to syslog.</summary>
    public bool Enabled { get; set; }

    /// <summary>The collector's host name or address.</summary>
    public string? Host { get; set; }

    /// <summary>The collector's port (514 is the usual UDP port, 601 or 6514 TCP).</summary>
    public int Port { get; set; } = 514;

    /// <summary><c>udp</c> (one message per datagram, RFC 5426) or <c>tcp</c> (octet counting, RFC 6587 §3.4.1).</summary>
    public string Protocol { get; set; } = "udp";

    /// <summary>Syslog facility code 0-23 (RFC 5424 §6.2.1); 13 is "log audit".</summary>
    public int Facility { get; set; } = 13;

    /// <summary>APP-NAME of the messages (RFC 5424 §6.2.5, at most 48 printable ASCII characters).</summary>
    public string AppName { get; set; } = "crm-security";

    /// <summary>Findings below this severity are not sent: low, medium, high or critical.</summary>
    public string MinSeverity { get; set; } = "medium";

    /// <summary>
    /// Whether this destination receives real user ids and names. Off by default: it gets the pseudonym, like every
    /// reader without the right to reveal. On, every finding sent is first recorded in the audit trail as a release of
    /// its identity to this destination, and the start-up log names the destination (an explicit, audited choice).
    /// </summary>
    public bool RealIdentities { get; set; }
}

/// <summary>One webhook receiver, bound from <c>AuditAnalyzer:Export:Webhooks:N</c>.</summary>
public sealed class WebhookOptions
{
    /// <summary>Names the receiver in logs and in its delivery cursor; letters, digits, '-', '_' and '.'.</summary>
    public string? Name { get; set; }

    /// <summary>Where findings are POSTed: https, or http on a loopback address only.</summary>
    public string? Url { get; set; }

    /// <summary>The signing secret: <c>whsec_</c> + base64 (as Standard Webhooks libraries take it), or plain text; at least 32 bytes.</summary>
    public string? Secret { get; set; }

    /// <summary>Findings below this severity are not sent: low, medium, high or critical.</summary>
    public string MinSeverity { get; set; } = "medium";

    /// <summary>Attempts per finding change before it is recorded as failed and skipped.</summary>
    public int MaxAttempts { get; set; } = 8;

    /// <summary>
    /// Whether this destination receives real user ids and names. Off by default: it gets the pseudonym, like every
    /// reader without the right to reveal. On, every finding sent is first recorded in the audit trail as a release of
    /// its identity to this destination, and the start-up log names the destination (an explicit, audited choice).
    /// </summary>
    public bool RealIdentities { get; set; }
}

internal sealed class ExportOptionsValidator : IValidateOptions<ExportOptions>
{
    public ValidateOptionsResult Validate(string? name, ExportOptions options)
    {
        const string s = ExportOptions.Section;
        var errors = new List<string>();
        if (options.SettleTime < TimeSpan.Zero || options.SettleTime > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{s}:SettleTime is {options.SettleTime}; use 00:00:00 to 00:10:00 (for example 00:00:05).");
        }

        if (options.PollInterval <= TimeSpan.Zero)
        {
            errors.Add($"{s}:PollInterval must be positive (for example 00:00:01).");
        }

        if (options.LeaseDuration < options.PollInterval * 3)
        {
            errors.Add($"{s}:LeaseDuration must be at least three PollIntervals, so the forwarding instance renews its lease before it expires.");
        }

        if (options.RetryDelay <= TimeSpan.Zero || options.MaxRetryDelay < options.RetryDelay)
        {
            errors.Add($"{s}:RetryDelay must be positive and {s}:MaxRetryDelay at least as long (for example 00:00:01 and 00:05:00).");
        }

        ValidateSyslog(options.Syslog, errors);
        for (var i = 0; i < options.Webhooks.Count; i++)
        {
            ValidateWebhook(options.Webhooks[i], $"{s}:Webhooks:{i}", errors);
        }

        var duplicate = options.Webhooks.Where(w => !string.IsNullOrEmpty(w.Name)).GroupBy(w => w.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            errors.Add($"{s}:Webhooks has two receivers named '{duplicate.Key}'; each Name must be unique (it keys the delivery cursor).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidateSyslog(SyslogOptions syslog, List<string> errors)
    {
        const string s = ExportOptions.Section + ":Syslog";
        if (!syslog.Enabled)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(syslog.Host))
        {
            errors.Add($"{s}:Host is empty; set the collector's host name or address, or set {s}:Enabled to false.");
        }

        if (syslog.Port is < 1 or > 65535)
        {
            errors.Add($"{s}:Port is {syslog.Port}; use 1 to 65535.");
        }

        if (syslog.Protocol is not ("udp" or "tcp"))
        {
            errors.Add($"{s}:Protocol is '{syslog.Protocol}'; use udp or tcp.");
        }

        if (syslog.Facility is < 0 or > 23)
        {
            errors.Add($"{s}:Facility is {syslog.Facility}; use a facility code 0 to 23 (RFC 5424 §6.2.1), for example 13 (log audit).");
        }

        // RFC 5424 §6.2.5: APP-NAME is 1-48 printable US-ASCII characters (33-126).
        if (string.IsNullOrEmpty(syslog.AppName) || syslog.AppName.Length > 48 || syslog.AppName.Any(c => c is < '!' or > '~'))
        {
            errors.Add($"{s}:AppName must be 1 to 48 printable ASCII characters without spaces (RFC 5424 §6.2.5).");
        }

        if (!SeverityNames.TryParse(syslog.MinSeverity, out _))
        {
            errors.Add($"{s}:MinSeverity is '{syslog.MinSeverity}'; use low, medium, high or critical.");
        }
    }

    private static void ValidateWebhook(WebhookOptions webhook, string key, List<string> errors)
    {
        if (string.IsNullOrEmpty(webhook.Name) || webhook.Name.Length > 100 || !webhook.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            errors.Add($"{key}:Name must be 1 to 100 letters, digits, '-', '_' or '.' (it names the receiver in logs and keys its delivery cursor).");
        }

        if (!Uri.TryCreate(webhook.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttps && url.Scheme != Uri.UriSchemeHttp))
        {
            errors.Add($"{key}:Url must be an absolute https URL.");
        }
        else if (url.Scheme == Uri.UriSchemeHttp && !url.IsLoopback)
        {
            // Findings name users and what they did: only https leaves the machine. http is for a receiver on loopback.
            errors.Add($"{key}:Url uses http for a host that is not loopback; use https (http is allowed for 127.0.0.1, ::1 and localhost only).");
        }
        else if (!string.IsNullOrEmpty(url.UserInfo))
        {
            errors.Add($"{key}:Url must not carry credentials; the receiver authenticates calls by their signature.");
        }

        if (string.IsNullOrEmpty(webhook.Secret))
        {
            errors.Add($"{key}:Secret is missing; set a random secret of at least 32 bytes (for example whsec_ followed by 32 random bytes in base64).");
        }
        else if (WebhookSignature.KeyOf(webhook.Secret) is not { Length: >= WebhookSignature.MinimumKeyBytes })
        {
            // Never echo the secret: only its length. HMAC-SHA256 keys shorter than the hash output weaken it (RFC 2104 §3).
            errors.Add($"{key}:Secret is too short or not valid base64 after whsec_; use at least {WebhookSignature.MinimumKeyBytes} random bytes.");
        }

        if (!SeverityNames.TryParse(webhook.MinSeverity, out _))
        {
            errors.Add($"{key}:MinSeverity is '{webhook.MinSeverity}'; use low, medium, high or critical.");
        }

        if (webhook.MaxAttempts is < 1 or > 100)
        {
            errors.Add($"{key}:MaxAttempts is {webhook.MaxAttempts}; use 1 to 100.");
        }
    }
}
