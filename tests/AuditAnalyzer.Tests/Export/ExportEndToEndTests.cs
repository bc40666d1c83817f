using System.Net;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

/// <summary>
/// The whole path on the real PostgreSQL: events posted with a demo-crm token become a finding that appears in the
/// ECS feed, on a syslog collector and at a webhook receiver, all on loopback. Plus the host's start-up check.
/// </summary>
public sealed class ExportEndToEndTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-export-e2e-").FullName;
    private PostgresDatabase _postgres = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _postgres = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);

    public async ValueTask DisposeAsync()
    {
        await _postgres.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task A_posted_bulk_export_reaches_the_ecs_feed_the_syslog_collector_and_the_webhook_on_postgresql()
    {
        await using var syslog = SyslogListener.Start("udp");
        await using var receiver = WebhookReceiver.Start(_ => 200);
        await using var host = LiveHost.Start(_directory, _postgres.ConnectionString, SyslogForwardingTests.Fast(syslog.Settings(), receiver.Settings()));

        var (posted, _, _) = await host.PostEventsAsync(await host.WriterTokenAsync(), ExportSamples.NightExport("carl", "e"));
        Assert.Equal(HttpStatusCode.OK, posted);

        // Every destination gets the pseudonym: none was configured with RealIdentities.
        var carl = await host.PseudonymAsync("carl");
        var (lines, cursor) = await ExportFeedTests.PullUntilAsync(host, await host.AuditorTokenAsync(), carl);
        var ecs = lines.First(l => l.GetProperty("user").GetProperty("id").GetString() == carl);
        var findingId = ecs.GetProperty("event").GetProperty("id").GetString()!;
        Assert.Equal("alert", ecs.GetProperty("event").GetProperty("kind").GetString());
        Assert.False(string.IsNullOrEmpty(cursor));

        var messages = await syslog.WaitForAsync("externalId=" + findingId, [], Cancel);
        Assert.Contains(messages, m => m.Contains("CEF:0|CRM Security|Audit Analyzer|", StringComparison.Ordinal) && m.Contains($"suid={carl}", StringComparison.Ordinal) && !m.Contains("suid=carl", StringComparison.Ordinal));

        var calls = await receiver.WaitForAsync(c => c.Id.StartsWith($"msg_{findingId}_", StringComparison.Ordinal), Cancel);
        var call = calls.First(c => c.Id.StartsWith($"msg_{findingId}_", StringComparison.Ordinal));
        Assert.True(call.Verified);
        Assert.Equal(carl, JsonDocument.Parse(call.Body).RootElement.GetProperty("data").GetProperty("user").GetProperty("id").GetString());
    }

    [Fact]
    public async Task The_service_with_a_short_webhook_secret_stops_with_exit_78_naming_the_setting_and_not_the_secret()
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(
            new Dictionary<string, string?>
            {
                ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
                ["AuditAnalyzer__Export__Webhooks__0__Name"] = "siem",
                ["AuditAnalyzer__Export__Webhooks__0__Url"] = "https://siem.example.com/hook",
                ["AuditAnalyzer__Export__Webhooks__0__Secret"] = "short-secret-Xq7",
            },
            Cancel);

        Assert.Equal(78, exitCode);
        Assert.Contains("AuditAnalyzer:Export:Webhooks:0:Secret", output, StringComparison.Ordinal);
        Assert.DoesNotContain("short-secret-Xq7", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }
}
