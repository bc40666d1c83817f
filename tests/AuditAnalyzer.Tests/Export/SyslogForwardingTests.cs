using System.Net;
using CrmSecurity.AuditAnalyzer.Export;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

/// <summary>CEF over syslog from the real host to a real collector on loopback, over UDP and TCP.</summary>
public sealed class SyslogForwardingTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-syslog-").FullName;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    internal static Dictionary<string, string?> Fast(params IDictionary<string, string?>[] more)
    {
        var settings = new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Export:SettleTime"] = "00:00:00",
            ["AuditAnalyzer:Export:PollInterval"] = "00:00:00.2",
            ["AuditAnalyzer:Export:LeaseDuration"] = "00:00:05",
            ["AuditAnalyzer:Export:RetryDelay"] = "00:00:00.1",
            ["AuditAnalyzer:Export:MaxRetryDelay"] = "00:00:01",
        };
        foreach (var (key, value) in more.SelectMany(m => m))
        {
            settings[key] = value;
        }

        return settings;
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A late database call of a stopped host may still hold a file; the temp folder is cleaned by the OS.
        }

        return ValueTask.CompletedTask;
    }

    [Theory]
    [InlineData("udp")]
    [InlineData("tcp")]
    public async Task A_finding_reaches_the_collector_as_rfc5424_cef_and_a_restart_sends_nothing_twice(string protocol)
    {
        await using var listener = SyslogListener.Start(protocol);
        var directory = Path.Combine(_directory, protocol);
        var received = new List<string>();
        var host = LiveHost.Start(directory, extra: Fast(listener.Settings()));
        try
        {
            Assert.Equal(HttpStatusCode.OK, (await host.PostEventsAsync(await host.WriterTokenAsync(), ExportSamples.NightExport("carl", "s"))).Status);

            // The collector gets the pseudonym (no destination here is configured with RealIdentities).
            var carl = await host.PseudonymAsync("carl");
            await listener.WaitForAsync($"suid={carl}", received, Cancel);

            var message = received.First(m => m.Contains($"suid={carl}", StringComparison.Ordinal));
            Assert.DoesNotContain("suid=carl", message, StringComparison.Ordinal);
            Assert.Matches(@"^<10[2-6]>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ crm-security \d+ finding - CEF:0\|CRM Security\|Audit Analyzer\|[^|]+\|bulk_export\|", message);
            Assert.Matches(@"cs4=(\S+,)?s-2(,\S+)?$", message);
            Assert.True(listener.FramingHeld);

            // Stop only once the cursor holds what was sent, so the restart below tests resuming, not the at-least-once window.
            await WaitForCursorAsync(host, "syslog", Field(message, "externalId"));
        }
        finally
        {
            await host.DisposeAsync();
        }

        // A restart resumes from the stored cursor: the next finding arrives and no change already sent comes again.
        received.AddRange(listener.Drain());
        var restarted = LiveHost.Start(directory, extra: Fast(listener.Settings()));
        string dora;
        try
        {
            Assert.Equal(HttpStatusCode.OK, (await restarted.PostEventsAsync(await restarted.WriterTokenAsync(), ExportSamples.NightExport("dora", "t"))).Status);
            dora = await restarted.PseudonymAsync("dora");
            await listener.WaitForAsync($"suid={dora}", received, Cancel);
        }
        finally
        {
            await restarted.DisposeAsync();
        }

        received.AddRange(listener.Drain());
        // Neither the same change twice nor a re-save that changed nothing (the restarted scorer saves open findings
        // again): what a collector receives, apart from the send time and rt, is never the same twice.
        Assert.All(received, m => Assert.Matches("[ |]rt=\\d+ ", m));
        var contents = received.Select(m => System.Text.RegularExpressions.Regex.Replace(m, @"^<\d+>1 \S+ |[ |]rt=\d+", "")).ToList();
        Assert.True(contents.Distinct().Count() == contents.Count, string.Join("\n", received));
        Assert.Contains(received, m => m.Contains($"suid={dora}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_tcp_collector_that_is_down_holds_the_finding_until_it_is_up_and_then_gets_it()
    {
        var port = SyslogListener.FreeTcpPort();
        var settings = new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Export:Syslog:Enabled"] = "true",
            ["AuditAnalyzer:Export:Syslog:Host"] = "127.0.0.1",
            ["AuditAnalyzer:Export:Syslog:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["AuditAnalyzer:Export:Syslog:Protocol"] = "tcp",
            ["AuditAnalyzer:Export:Syslog:MinSeverity"] = "low",
        };
        await using var host = LiveHost.Start(Path.Combine(_directory, "late"), extra: Fast(settings));
        Assert.Equal(HttpStatusCode.OK, (await host.PostEventsAsync(await host.WriterTokenAsync(), ExportSamples.NightExport("carl", "late"))).Status);

        // The finding is in the feed while nothing listens: the forwarder retries and its cursor stays behind it.
        var carl = await host.PseudonymAsync("carl");
        var (lines, _) = await ExportFeedTests.PullUntilAsync(host, await host.AuditorTokenAsync(), carl);
        var findingId = lines.First(l => l.GetProperty("user").GetProperty("id").GetString() == carl).GetProperty("event").GetProperty("id").GetString()!;
        await using (var scope = host.Services.CreateAsyncScope())
        {
            var cursor = await scope.ServiceProvider.GetRequiredService<ExportDbContext>().Cursors.AsNoTracking().FirstOrDefaultAsync(c => c.Destination == "syslog", Cancel);
            Assert.Null(cursor);
        }

        await using var listener = SyslogListener.Start("tcp", port);
        await listener.WaitForAsync("externalId=" + findingId, [], Cancel);
        await WaitForCursorAsync(host, "syslog", findingId);
    }

    internal static async Task WaitForCursorAsync(LiveHost host, string destination, string findingId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            await using var scope = host.Services.CreateAsyncScope();
            var cursor = await scope.ServiceProvider.GetRequiredService<ExportDbContext>().Cursors.AsNoTracking()
                .FirstOrDefaultAsync(c => c.Destination == destination, Cancel);
            if (cursor?.FindingId == findingId)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the {destination} cursor did not reach {findingId} within 30 seconds");
            await Task.Delay(100, Cancel);
        }
    }

    internal static string Field(string message, string key) =>
        System.Text.RegularExpressions.Regex.Match(message, $"[ |]{key}=(\\S+)").Groups[1].Value;
}
