using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Identity.Events;
using CrmSecurity.Server.Events;
using CrmSecurity.Server.Tests.Hosting;
using CrmSecurity.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Server.Tests.Events;

/// <summary>
/// The in-process hand-off writes each event's contract line itself and the writer stores it without parsing it again
/// (issue 17): what it stores must be what <c>POST /analyzer/events</c> stores for the same event, and it must still be scored.
/// </summary>
public sealed class AnalyzerEventSinkTests(InProcessHost host) : IClassFixture<InProcessHost>
{
    // What the sink serialized each event with before it had its own serializer: the reflection serializer, nulls left out.
    private static readonly JsonSerializerOptions ReflectionJson = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    [Fact]
    public async Task A_handed_off_event_is_stored_byte_for_byte_as_POST_analyzer_events_stores_the_same_event()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var at = new DateTimeOffset(DateTime.UtcNow.Date.AddDays(-1), TimeSpan.Zero).Add(new TimeSpan(0, 9, 30, 15, 123)).AddTicks(4567); // yesterday: inside the retention
        List<AccessEvent> events =
        [
            new()
            {
                EventId = $"parity-{run}-1", Timestamp = at, UserId = InProcessHost.Client, Action = AccessActions.TokenIssue, Tenant = "default",
                ClientId = InProcessHost.Client, SourceIp = "10.1.2.3", Details = "grant_type=client_credentials; scope=events:write",
            },
            new()
            {
                // Another offset, characters the JSON writer escapes, and a denied outcome.
                EventId = $"parity-{run}-2", Timestamp = at.ToOffset(TimeSpan.FromHours(-7)), UserId = "u-ünïcødé", Action = AccessActions.TokenRejected,
                Outcome = Outcomes.Denied, UserAgent = "Mozilla/5.0 \"quoted\" <b>&amp;</b>", Details = "line\nbreak\ttab \u2028 \U0001F600 \\ '",
            },
            new()
            {
                EventId = $"parity-{run}-3", Timestamp = at.AddSeconds(1), UserId = "adam", UserName = "Adam Ärlig", Action = AccessActions.AdminChange,
                Entity = "user", TargetUser = "adam", Privilege = "role:System Administrator", Details = "grant", SessionId = "s-1",
            },
            new() { EventId = $"parity-{run}-4", Timestamp = at.AddSeconds(2), UserId = "bob", Action = AccessActions.PasswordChange },
            // Not a contract action: rejected on both paths, and stored on neither.
            new() { EventId = $"parity-{run}-5", Timestamp = at.AddSeconds(3), UserId = "bob", Action = "teleport" },
        ];
        var reflectionLines = events.Select(e => JsonSerializer.Serialize(AnalyzerEventSink.ToContract(e), ReflectionJson)).ToList();

        var lines = AnalyzerEventSink.Lines(events);
        var handed = await host.Services.GetRequiredService<ILiveEventWriter>().WriteValidatedAsync(AnalyzerEventSink.ClientId, lines, TestContext.Current.CancellationToken);
        var posted = await PostAsync(string.Concat(reflectionLines.Select(line => line + "\n")));

        Assert.Equal(reflectionLines, lines.Select(l => l.Line));
        Assert.Equal(new LiveWriteResult(5, 4, 0, 1), handed);
        Assert.Equal((5, 4, 1), (posted.GetProperty("lines").GetInt32(), posted.GetProperty("stored").GetInt32(), posted.GetProperty("rejected").GetInt32()));
        var rows = await host.QueryAsync(
            $"SELECT event_key, client_id, user_id, partition, timestamp_ticks, line FROM analyzer_live_events WHERE event_key LIKE '%:parity-{run}-%' ORDER BY event_key");
        Assert.Equal(8, rows.Count);
        foreach (var id in Enumerable.Range(1, 4).Select(n => $"parity-{run}-{n}"))
        {
            var viaHttp = Assert.Single(rows, r => (string)r["event_key"]! == $"{InProcessHost.Client}:{id}");
            var handedOff = Assert.Single(rows, r => (string)r["event_key"]! == $"{AnalyzerEventSink.ClientId}:{id}");
            foreach (var column in new[] { "user_id", "partition", "timestamp_ticks", "line" })
            {
                Assert.Equal(viaHttp[column], handedOff[column]);
            }
        }

        Assert.Equal(at.UtcTicks, (long)Assert.Single(rows, r => (string)r["event_key"]! == $"identity:parity-{run}-1")["timestamp_ticks"]!);
    }

    [Fact]
    public async Task A_line_the_caller_vouches_for_is_stored_without_being_parsed_again()
    {
        // The row's event time comes from the field the caller gives, not from reading the line: proof that the line was
        // not parsed (a caller that serialized the event just now, like the sink, gives the same time in both).
        var id = "vouched-" + Guid.NewGuid().ToString("N")[..8];
        var inLine = new DateTimeOffset(DateTime.UtcNow.Date.AddDays(-2), TimeSpan.Zero); // inside the retention, which an older event would not pass
        var given = inLine.AddHours(5);
        var line = $"{{\"event_id\":\"{id}\",\"timestamp\":\"{inLine:yyyy-MM-dd}T00:00:00+00:00\",\"user_id\":\"carol\",\"action\":\"login\"}}";

        var result = await host.Services.GetRequiredService<ILiveEventWriter>().WriteValidatedAsync(
            AnalyzerEventSink.ClientId, [new ContractLine(id, "carol", given, "login", null, line)], TestContext.Current.CancellationToken);

        Assert.Equal(new LiveWriteResult(1, 1, 0, 0), result);
        var row = Assert.Single(await host.QueryAsync($"SELECT timestamp_ticks, line FROM analyzer_live_events WHERE event_key = 'identity:{id}'"));
        Assert.Equal(given.UtcTicks, (long)row["timestamp_ticks"]!);
        Assert.Equal(line, row["line"]);
    }

    [Fact]
    public async Task A_self_grant_handed_off_through_the_queue_becomes_a_finding()
    {
        var admin = "self-granter-" + Guid.NewGuid().ToString("N")[..8];
        var sink = host.Services.GetRequiredService<AnalyzerEventSink>();

        await sink.WriteAsync(new AccessEvent
        {
            Timestamp = DateTimeOffset.UtcNow,
            UserId = admin,
            Action = AccessActions.AdminChange,
            Entity = "user",
            TargetUser = admin,
            Privilege = "role:System Administrator",
            Details = "grant",
        }, TestContext.Current.CancellationToken);

        var findings = await host.WaitForRowsAsync($"SELECT json FROM analyzer_live_findings WHERE user_id = '{admin}'",
            r => r.Any(row => ((string)row["json"]!).Contains("privilege_misuse.self_grant", StringComparison.Ordinal)));
        Assert.Contains(findings, row => ((string)row["json"]!).Contains("privilege_misuse.self_grant", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_full_queue_drops_the_analyzers_copy_instead_of_waiting()
    {
        // A sink whose writer never finishes: the queue fills, and a token request's write must still return at once.
        var stuck = new StuckWriter();
        using var sink = new AnalyzerEventSink(stuck, Microsoft.Extensions.Options.Options.Create(new IdentityEventsOptions()),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<AnalyzerEventSink>.Instance);
        await sink.StartAsync(TestContext.Current.CancellationToken);
        var e = new AccessEvent { Timestamp = DateTimeOffset.UtcNow, UserId = "u", Action = AccessActions.TokenIssue };

        for (var i = 0; i < 50_000 + 1_000; i++)
        {
            Assert.True(CompletedAtOnce(sink.WriteAsync(e, TestContext.Current.CancellationToken)));
        }

        Assert.InRange(sink.Dropped, 500, 1_000);
        stuck.Release.SetResult();
        await sink.StopAsync(TestContext.Current.CancellationToken);
    }

    // Never awaited otherwise: a write that completes synchronously has nothing left to wait for.
    private static bool CompletedAtOnce(ValueTask write) => write.IsCompletedSuccessfully;

    private async Task<JsonElement> PostAsync(string lines)
    {
        using var http = host.CreateClient(await host.TokenAsync("events:write"));
        using var content = new StringContent(lines, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        using var response = await http.PostAsync(new Uri("analyzer/events", UriKind.Relative), content, TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"POST /analyzer/events: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
        return await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
    }

    private sealed class StuckWriter : ILiveEventWriter
    {
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<LiveWriteResult> WriteAsync(string clientId, ReadOnlyMemory<byte> jsonLines, CancellationToken cancellationToken)
        {
            await Release.Task;
            return new LiveWriteResult(0, 0, 0, 0);
        }

        public async Task<LiveWriteResult> WriteValidatedAsync(string clientId, IReadOnlyList<ContractLine> events, CancellationToken cancellationToken)
        {
            await Release.Task;
            return new LiveWriteResult(events.Count, events.Count, 0, 0);
        }
    }
}

/// <summary><c>AuditAnalyzer:IdentityEvents:Enabled=false</c> turns the hand-off off; Identity keeps its own copy.</summary>
public sealed class HandOffOffHost : InProcessHost
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?> { ["AuditAnalyzer:IdentityEvents:Enabled"] = "false" };
}

public sealed class IdentityEventsSwitchTests(HandOffOffHost host) : IClassFixture<HandOffOffHost>, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-security-handoff-").FullName;

    [Fact]
    public async Task With_the_hand_off_switched_off_a_token_reaches_Identitys_table_but_not_the_analyzers()
    {
        await host.TokenAsync("events:write");
        var identity = await host.WaitForRowsAsync("SELECT EventId FROM identity_access_events WHERE Action = 'token_issue'", r => r.Count > 0);
        await host.Services.GetRequiredService<AnalyzerEventSink>().FlushAsync(TestContext.Current.CancellationToken);

        Assert.NotEmpty(identity);
        Assert.Empty(await host.QueryAsync("SELECT seq FROM analyzer_live_events WHERE client_id = 'identity'"));
    }

    [Fact]
    public async Task A_switch_value_that_is_not_a_boolean_stops_start_up_naming_the_setting()
    {
        var environment = StartupTests.SqliteIn(_directory);
        environment["AuditAnalyzer__IdentityEvents__Enabled"] = "sometimes";

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("The setting 'AuditAnalyzer:IdentityEvents:Enabled' cannot be read as Boolean. Use true or false.", output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
