using System.Globalization;
using System.Text;
using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Service.Retention;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// Retention of stored events (<c>AuditAnalyzer:Live:RetentionDays</c>) through the real host, on SQLite and on the real
/// PostgreSQL. Events are sent over HTTP with event times in the past but inside the retention window (the host refuses
/// older ones); the test scores them with the host's own scorer (<see cref="LiveScoring.PollAsync"/>, its background loop
/// switched off) and runs a retention pass itself over the host's database, as of <see cref="Later"/>, forty days on, as
/// the hourly pass would once that time has passed, so nothing waits on a clock.
/// </summary>
public sealed class RetentionTests : IAsyncDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    /// <summary>When the test's retention passes run: events sent now up to 50 days old are more than 90 days old then.</summary>
    private static readonly DateTimeOffset Later = Now.AddDays(40);
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-retention-").FullName;
    private PostgresDatabase? _postgres;
    private LiveHost? _host;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private async Task<LiveHost> StartAsync(string provider, bool demo = true)
    {
        if (provider == "PostgreSql" && _postgres is null)
        {
            _postgres = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);
        }

        _host = LiveHost.Start(_directory, _postgres?.ConnectionString, new Dictionary<string, string?>
        {
            // The test scores and deletes itself; neither background loop runs.
            ["AuditAnalyzer:Live:Scoring"] = "false",
            ["Identity:DemoMode"] = demo ? "true" : "false",
        });
        return _host;
    }

    private async Task<LiveHost> RestartAsync(string provider, bool demo)
    {
        await _host!.DisposeAsync();
        return await StartAsync(provider, demo);
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A last write of the host's dispose; the temporary folder is left behind.
        }
    }

    private static string Line(string eventId, string user, string action, DateTimeOffset time, string extra = "") =>
        $"{{\"event_id\":\"{eventId}\",\"timestamp\":\"{time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\"," +
        $"\"user_id\":\"{user}\",\"action\":\"{action}\"{extra}}}";

    /// <summary><paramref name="count"/> reads by <paramref name="user"/>, a second apart from <paramref name="from"/>.</summary>
    private static IEnumerable<string> Reads(string prefix, string user, DateTimeOffset from, int count) =>
        Enumerable.Range(0, count).Select(i => Line($"{prefix}-{i}", user, "read", from.AddSeconds(i), ",\"entity\":\"contact\""));



    private static async Task<List<string>> StoredIdsAsync(LiveHost host, string user)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var keys = await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Events.AsNoTracking()
            .Where(e => e.UserId == user).Select(e => new { e.EventKey, e.ClientId }).ToListAsync(Cancel);
        return [.. keys.Select(k => k.EventKey[(k.ClientId.Length + 1)..]).Order(StringComparer.Ordinal)];
    }

    /// <summary>One retention pass over the host's database and settings, as of <see cref="Later"/>.</summary>
    private static async Task<RetentionPass> RetainAsync(LiveHost host)
    {
        using var retention = new EventRetention(host.Services.GetRequiredService<IServiceScopeFactory>(), host.Services.GetRequiredService<IOptions<LiveOptions>>(),
            new ShiftedClock(Later - Now), NullLogger<EventRetention>.Instance);
        return await retention.DeleteExpiredAsync(Cancel);
    }

    /// <summary>The system clock moved on by <paramref name="by"/>; its timers are real, so the pass's pauses between steps end.</summary>
    private sealed class ShiftedClock(TimeSpan by) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => TimeProvider.System.GetUtcNow() + by;
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task Scored_events_older_than_the_retention_are_deleted_in_steps_and_newer_ones_are_kept(string provider)
    {
        var host = await StartAsync(provider);
        // As of the pass: 6,000 events 100 days old (more than one 5,000-row step), one a day inside the 90 days, and last week's day.
        await host.PostAllAsync(Reads("old", "ret-ann", Later.AddDays(-100), 6_000)
            .Concat([Line("edge-1", "ret-ann", "read", Later.AddDays(-89)), Line("edge-2", "ret-bob", "read", Later.AddDays(-89))])
            .Concat(Reads("new", "ret-bob", Now.AddDays(-7), 50)), 5000);
        await host.ScoreAllAsync();

        var pass = await RetainAsync(host);

        Assert.Equal(6_000, pass.Deleted);
        Assert.True(pass.Batches >= 2, $"6,000 rows were deleted in {pass.Batches} step(s); at most 5,000 go in one transaction");
        Assert.Equal(["edge-1"], await StoredIdsAsync(host, "ret-ann"));
        Assert.Equal(51, (await StoredIdsAsync(host, "ret-bob")).Count);
        Assert.Equal(0, (await RetainAsync(host)).Deleted);
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task Old_events_not_scored_yet_are_kept(string provider)
    {
        var host = await StartAsync(provider);
        await host.PostAllAsync(Reads("early", "ret-cat", Later.AddDays(-120), 10), 5000);
        await host.ScoreAllAsync();
        await host.PostAllAsync(Reads("waiting", "ret-cat", Later.AddDays(-100), 10), 5000);

        var pass = await RetainAsync(host);

        Assert.Equal(10, pass.Deleted);
        var kept = await StoredIdsAsync(host, "ret-cat");
        Assert.Equal(10, kept.Count);
        Assert.All(kept, id => Assert.StartsWith("waiting-", id, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task A_finding_still_shows_its_evidence_after_its_events_are_deleted(string provider)
    {
        var host = await StartAsync(provider);
        var night = Later.Date.AddDays(-100).AddHours(3);
        // 48,000 contacts in one export: over the contact limit, a reason that needs no history (the organisation is new).
        await host.PostAllAsync([
            Line("x-1", "ret-carl", "login", night, ",\"source_ip\":\"203.0.113.9\""),
            Line("x-2", "ret-carl", "export", night.AddMinutes(4), ",\"entity\":\"contact\",\"record_count\":48000,\"source_ip\":\"203.0.113.9\""),
            Line("later", "ret-dan", "read", Now.AddDays(-1)),
        ]);
        await host.ScoreAllAsync();
        string id;
        await using (var scope = host.Services.CreateAsyncScope())
        {
            id = await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Findings.Where(f => f.UserId == "ret-carl").Select(f => f.Id).SingleAsync(Cancel);
        }

        var before = await DetailAsync(host, id);
        var pass = await RetainAsync(host);
        var after = await DetailAsync(host, id);

        Assert.Equal(2, pass.Deleted);
        Assert.Empty(await StoredIdsAsync(host, "ret-carl"));
        Assert.Contains(before.Evidence, e => e.EventId == "x-2");
        Assert.Equal(before.Evidence, after.Evidence);
        var export = Assert.Single(after.Evidence, e => e.EventId == "x-2");
        Assert.Equal(("export", "contact", 48_000L, "203.0.113.9", "demo-crm"), (export.Action, export.Entity, export.RecordCount, export.SourceIp, export.ClientId));
    }

    private static async Task<FindingDetail> DetailAsync(LiveHost host, string id)
    {
        // What GET /analyzer/review/findings/{id} and the finding page (/review/findings/{id}) show.
        await using var scope = host.Services.CreateAsyncScope();
        var detail = await ReviewQueries.DetailAsync(
            scope.ServiceProvider.GetRequiredService<LiveDbContext>(), id, DateTimeOffset.UtcNow, host.Services.GetRequiredService<PeerGroupSizes>(), Cancel);
        return detail ?? throw new InvalidOperationException($"finding {id} not found");
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task The_organisation_does_not_start_learning_again_when_its_first_events_are_deleted(string provider)
    {
        // Without the demo's seeding (its admin changes are today's first events) and without a token: nothing else arrives first.
        var host = await StartAsync(provider, demo: false);
        var first = Later.AddDays(-100);
        // In-process, as Identity stores its access events: over HTTP the writer's own token request would arrive first (today).
        var lines = string.Join('\n', Reads("first", "ret-eve", first, 5).Concat(Reads("recent", "ret-eve", Now.AddDays(-3), 5)));
        var written = await host.Services.GetRequiredService<ILiveEventWriter>().WriteAsync("demo-crm", Encoding.UTF8.GetBytes(lines), Cancel);
        Assert.Equal(10, written.Stored);
        await host.ScoreAllAsync();
        await using (var before = host.Services.CreateAsyncScope())
        {
            Assert.Equal(DateOnly.FromDateTime(first.UtcDateTime).DayNumber, await OrganisationHistory.FirstArrivalDayAsync(before.ServiceProvider.GetRequiredService<LiveDbContext>(), Cancel));
        }

        Assert.Equal(5, (await RetainAsync(host)).Deleted);
        // A restarted instance has seen nothing itself: it reads the first day from the database, as a rebuild does.
        host = await RestartAsync(provider, demo: false);
        await using var scope = host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        var learning = await host.Services.GetRequiredService<OrganisationHistory>().LearningAsync(db, DateOnly.FromDateTime(Now.UtcDateTime), Cancel);

        Assert.Equal(DateOnly.FromDateTime(first.UtcDateTime).DayNumber, await OrganisationHistory.FirstArrivalDayAsync(db, Cancel));
        Assert.Null(learning);
    }

    [Fact]
    public async Task The_in_process_writer_refuses_events_older_than_the_retention_as_the_HTTP_path_does()
    {
        // Identity's own events and the demo history go through ILiveEventWriter: the same window as POST /analyzer/events.
        var host = await StartAsync("Sqlite", demo: false);
        var now = host.Services.GetRequiredService<TimeProvider>().GetUtcNow();
        var lines = string.Join('\n', Line("inside", "ret-fay", "read", now.AddDays(-89)), Line("outside", "ret-fay", "read", now.AddDays(-91)));

        var written = await host.Services.GetRequiredService<ILiveEventWriter>().WriteAsync("demo-crm", Encoding.UTF8.GetBytes(lines), Cancel);

        Assert.Equal((2, 1, 0, 1), (written.Lines, written.Stored, written.Duplicates, written.Rejected));
        Assert.Equal(["inside"], await StoredIdsAsync(host, "ret-fay"));
    }

    [Fact]
    public async Task The_pre_validated_in_process_entry_refuses_events_older_than_the_retention_too()
    {
        // WriteValidatedAsync (Identity's hand-off) skips the parser for lines it vouches for; an old one still goes through it.
        var host = await StartAsync("Sqlite", demo: false);
        var now = host.Services.GetRequiredService<TimeProvider>().GetUtcNow();
        ContractLine Contract(string id, DateTimeOffset at) => new(id, "ret-gil", at, "read", null, Line(id, "ret-gil", "read", at));

        var written = await host.Services.GetRequiredService<ILiveEventWriter>().WriteValidatedAsync("identity", [Contract("fresh", now.AddDays(-1)), Contract("stale", now.AddDays(-91))], Cancel);

        Assert.Equal((2, 1, 0, 1), (written.Lines, written.Stored, written.Duplicates, written.Rejected));
        Assert.Equal(["fresh"], await StoredIdsAsync(host, "ret-gil"));
    }

    [Theory]
    [InlineData("30")]
    [InlineData("89")]
    [InlineData("36501")]
    public async Task A_retention_shorter_than_the_longest_baseline_window_stops_start_up_naming_the_setting(string days)
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["AuditAnalyzer__Live__RetentionDays"] = days,
        }, Cancel);

        Assert.Equal(78, exitCode);
        Assert.Contains("AuditAnalyzer:Live:RetentionDays", output, StringComparison.Ordinal);
        Assert.Contains("history_days 60", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }
}
