using CrmSecurity.AuditAnalyzer.Export;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

public sealed class ExportOptionsTests
{
    private const string GoodSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+O8OTPdb2YU=";

    private static IEnumerable<string> Errors(ExportOptions options) =>
        new ExportOptionsValidator().Validate(null, options).Failures ?? [];

    private static ExportOptions WithWebhook(string? url = "https://siem.example.com/hooks/crm", string? secret = GoodSecret, string name = "siem") =>
        new() { Webhooks = [new WebhookOptions { Name = name, Url = url, Secret = secret }] };

    [Fact]
    public void A_good_webhook_and_a_loopback_http_receiver_are_accepted()
    {
        Assert.Empty(Errors(WithWebhook()));
        Assert.Empty(Errors(WithWebhook("http://127.0.0.1:8080/hook")));
        Assert.Empty(Errors(WithWebhook("http://localhost:8080/hook")));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("whsec_c2hvcnQ=")]
    [InlineData("only-twenty-bytes-xx")]
    [InlineData("whsec_***not base64***")]
    public void A_missing_short_or_broken_secret_names_the_setting_and_never_echoes_the_secret(string? secret)
    {
        var error = Assert.Single(Errors(WithWebhook(secret: secret)));

        Assert.StartsWith("AuditAnalyzer:Export:Webhooks:0:Secret", error, StringComparison.Ordinal);
        if (!string.IsNullOrEmpty(secret))
        {
            Assert.DoesNotContain(secret, error, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("http://siem.example.com/hook")]
    [InlineData("ftp://siem.example.com/hook")]
    [InlineData("not a url")]
    [InlineData("https://user:pass@siem.example.com/hook")]
    public void A_url_that_is_not_https_or_loopback_http_names_the_setting(string url)
    {
        var error = Assert.Single(Errors(WithWebhook(url)));

        Assert.StartsWith("AuditAnalyzer:Export:Webhooks:0:Url", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Enabled_syslog_needs_a_host_a_known_protocol_and_a_facility_code()
    {
        var errors = Errors(new ExportOptions { Syslog = new SyslogOptions { Enabled = true, Protocol = "rfc3164", Facility = 24, MinSeverity = "severe" } }).ToList();

        Assert.Contains(errors, e => e.StartsWith("AuditAnalyzer:Export:Syslog:Host", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("AuditAnalyzer:Export:Syslog:Protocol", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("AuditAnalyzer:Export:Syslog:Facility", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("AuditAnalyzer:Export:Syslog:MinSeverity", StringComparison.Ordinal));
        Assert.Empty(Errors(new ExportOptions { Syslog = new SyslogOptions { Enabled = false, Protocol = "rfc3164" } }));
    }

    [Fact]
    public void Two_webhooks_with_one_name_are_refused()
    {
        var options = WithWebhook();
        options.Webhooks.Add(new WebhookOptions { Name = "siem", Url = "https://other.example.com/", Secret = GoodSecret });

        Assert.Contains(Errors(options), e => e.Contains("named 'siem'", StringComparison.Ordinal));
    }
}
