using System.Net;
using CrmSecurity.Security.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Security.Tests.Analyzer.AnalyzerCalls;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>
/// Issue 17, retention: stored events are deleted <c>AuditAnalyzer:Live:RetentionDays</c> (90) days after their event time,
/// and with them their idempotency keys. A rogue or compromised CRM app holding an ingestion token re-sent such events
/// after their copies were deleted: they were stored and scored again (doubled findings, history rewritten, baselines fed
/// with stale days). The live store now accepts only events inside the retention window, as of the host's clock; the
/// other lines of the batch are kept.
/// </summary>
public sealed class OldEventReplayTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    private DateTimeOffset Now => host.Services.GetRequiredService<TimeProvider>().GetUtcNow();

    [Fact]
    public async Task Events_older_than_the_retention_are_refused_by_line_and_the_good_lines_of_the_batch_are_kept()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-crm", "events:write");
        var now = Now;
        var replayed = now.AddDays(-91).Date.AddHours(3);
        var lines = string.Join('\n',
            Line("old-fresh", "old-ann", "read", now.AddHours(-2), ",\"tenant\":\"demo\""),
            // The replay: a night-time export of 48,000 contacts whose stored copy retention deleted a day or more ago.
            Line("old-replay", "old-bob", "export", new DateTimeOffset(replayed, TimeSpan.Zero), ",\"tenant\":\"demo\",\"entity\":\"contact\",\"record_count\":48000"),
            Line("old-ancient", "old-bob", "read", new DateTimeOffset(2019, 5, 1, 10, 0, 0, TimeSpan.Zero), ",\"tenant\":\"demo\""),
            Line("old-inside", "old-ann", "read", now.AddDays(-89), ",\"tenant\":\"demo\""));

        var (status, body) = await PostEventsAsync(host, token, lines);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, body.GetProperty("stored").GetInt32());
        Assert.Equal(2, body.GetProperty("rejected").GetInt32());
        var errors = body.GetProperty("errors").EnumerateArray().ToList();
        Assert.Equal([2, 3], errors.Select(e => e.GetProperty("line").GetInt32()));
        Assert.All(errors, e =>
        {
            Assert.Equal("older_than_retention", e.GetProperty("reason").GetString());
            Assert.Contains("AuditAnalyzer:Live:RetentionDays", e.GetProperty("message").GetString(), StringComparison.Ordinal);
        });
        Assert.Equal(["demo-crm:old-fresh", "demo-crm:old-inside"],
            (await host.QueryAsync("SELECT event_key FROM analyzer_live_events WHERE event_key LIKE 'demo-crm:old-%' ORDER BY event_key")).Select(r => (string?)r["event_key"]));

        await Task.Delay(1000, Personas.Cancel); // a few scoring rounds: nothing refused is scored
        Assert.Empty(await host.QueryAsync("SELECT id FROM analyzer_live_findings WHERE user_id = 'old-bob'"));
    }

    [Fact]
    public async Task A_batch_holding_only_events_older_than_the_retention_is_refused_whole_naming_each_line()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-crm", "events:write");
        var old = Now.AddDays(-90).AddMinutes(-5);
        var lines = Line("only-old-1", "old-cat", "read", old, ",\"tenant\":\"demo\"") + "\n"
            + Line("only-old-2", "old-cat", "read", old.AddDays(-400), ",\"tenant\":\"demo\"");

        var (status, body) = await PostEventsAsync(host, token, lines);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        var errors = body.GetProperty("errors");
        Assert.StartsWith("older_than_retention: ", errors.GetProperty("line 1")[0].GetString(), StringComparison.Ordinal);
        Assert.StartsWith("older_than_retention: ", errors.GetProperty("line 2")[0].GetString(), StringComparison.Ordinal);
        Assert.Empty(await host.QueryAsync("SELECT seq FROM analyzer_live_events WHERE user_id = 'old-cat'"));
    }
}
