using System.Globalization;
using System.Net;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Service.EventLog;
using CrmSecurity.AuditAnalyzer.Synthetic;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// The ingestion seam of issue 17 ("keep the ingestion side behind an interface that a Kafka consumer would implement"):
/// <see cref="IEventLog"/> is all that the ingest endpoint, Identity's writer and the partition scorer know of where events
/// are kept. Proof: a second implementation, an in-memory log shaped like a Kafka topic (<see cref="InMemoryEventLog"/>:
/// positions assigned at append, acknowledgements committed after the scoring transaction), put into the real host in place
/// of the events table, drives the real scorer to exactly the findings the database log gives for the same generated
/// organisation, across a restart that rebuilds every partition from the log; and both logs keep the same contract.
/// </summary>
public sealed class EventLogSeamTests : IAsyncDisposable
{
    private static readonly Lazy<string[]> Lines = new(() =>
    {
        var folder = Directory.CreateTempSubdirectory("crm-seam-org-").FullName;
        try
        {
            var result = new OrganisationGenerator(new GeneratorSettings { Users = 16, Days = 30, WarmupDays = 12, Seed = 23, InsiderShare = 0.3, Noise = false, Start = RecentMonday() }).Write(folder);
            return File.ReadAllLines(result.EventsPath);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    });

    private readonly List<string> _directories = [];
    private readonly List<PostgresDatabase> _databases = [];
    private SqliteConnection? _sqlite;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static string[] FirstPart => Lines.Value[..(Lines.Value.Length * 6 / 10)];

    private static string[] SecondPart => Lines.Value[(Lines.Value.Length * 6 / 10)..];

    /// <summary>The Monday six weeks ago: the history ends ten days ago, inside the live store's retention.</summary>
    private static DateOnly RecentMonday()
    {
        var day = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-40);
        return day.AddDays(-(((int)day.DayOfWeek + 6) % 7));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var database in _databases)
        {
            await database.DisposeAsync();
        }

        if (_sqlite is not null)
        {
            await _sqlite.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        foreach (var directory in _directories)
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
                // A last write of a host's dispose; the temporary folder is left behind.
            }
        }
    }

    private async Task<(string Directory, string? Postgres)> InstallationAsync(string provider)
    {
        var directory = Directory.CreateTempSubdirectory("crm-seam-host-").FullName;
        _directories.Add(directory);
        if (provider != "PostgreSql")
        {
            return (directory, null);
        }

        var database = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);
        _databases.Add(database);
        return (directory, database.ConnectionString);
    }

    /// <summary>
    /// A host that scores when the test polls; without snapshots a rebuild replays the whole partition from the log, with
    /// them (one with every scoring transaction) it restores the snapshot and replays what the log has after its position.
    /// </summary>
    private static LiveHost Start((string Directory, string? Postgres) place, IEventLog? log = null, bool snapshots = false) =>
        LiveHost.Start(place.Directory, place.Postgres, new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Live:Scoring"] = "false", // the test polls itself
            ["AuditAnalyzer:Live:SnapshotEveryEvents"] = snapshots ? "1" : "0",
        }, log is null ? null : services => services.AddSingleton(log));

    private static async Task PostAsync(LiveHost host, IEnumerable<string> lines)
    {
        var token = await host.WriterTokenAsync();
        foreach (var chunk in lines.Chunk(2_000))
        {
            var (status, _, body) = await host.PostEventsAsync(token, string.Join('\n', chunk));
            Assert.True(status == HttpStatusCode.OK, $"events refused: {(int)status} {body}");
            Assert.Equal(0, body.GetProperty("rejected").GetInt32());
        }
    }

    /// <summary>Polls the host's own scorer until its log has nothing pending (a restarted host first waits out the old leases).</summary>
    private static async Task ScoreAllAsync(LiveHost host)
    {
        var scoring = host.Services.GetRequiredService<LiveScoring>();
        for (var poll = 0; poll < 200; poll++)
        {
            await scoring.PollAsync(Cancel);
            await using var scope = host.Services.CreateAsyncScope();
            if ((await scope.ServiceProvider.GetRequiredService<IEventLog>().PendingPartitionsAsync(4, Cancel)).Count == 0)
            {
                return;
            }

            await Task.Delay(100, Cancel);
        }

        Assert.Fail("the scorer left events unacknowledged after 200 polls");
    }

    private static async Task<List<string>> FindingsAsync(LiveHost host)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var rows = await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Findings.AsNoTracking()
            .Select(f => new { f.Id, f.Json }).ToListAsync(Cancel);
        return [.. rows.OrderBy(r => r.Id, StringComparer.Ordinal).Select(r => $"{r.Id} {r.Json}")];
    }

    private static async Task<int> StoredEventsAsync(LiveHost host)
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Events.CountAsync(Cancel);
    }

    [Theory]
    [InlineData("Sqlite", false)]
    [InlineData("PostgreSql", false)]
    [InlineData("Sqlite", true)]
    public async Task An_in_memory_log_drives_the_real_scorer_to_the_findings_of_the_database_log_across_a_restart(string provider, bool snapshots)
    {
        // The database log (the events table), one host throughout.
        List<string> expected;
        await using (var control = Start(await InstallationAsync(provider)))
        {
            Assert.IsType<DatabaseEventLog>(control.Services.CreateScope().ServiceProvider.GetRequiredService<IEventLog>());
            await PostAsync(control, FirstPart);
            await ScoreAllAsync(control);
            await PostAsync(control, SecondPart);
            await ScoreAllAsync(control);
            expected = await FindingsAsync(control);
        }

        // The in-memory log: the same events over HTTP, and a restart between the two parts that rebuilds every partition
        // by replaying the acknowledged events from the log (no snapshots).
        var log = new InMemoryEventLog();
        var place = await InstallationAsync(provider);
        var before = Start(place, log, snapshots);
        await PostAsync(before, FirstPart);
        await ScoreAllAsync(before);
        var acknowledgedBefore = log.Acknowledged;
        await before.DisposeAsync();

        await using var after = Start(place, log, snapshots);
        await PostAsync(after, SecondPart);
        await ScoreAllAsync(after);

        Assert.True(expected.Count >= 5, $"the organisation raised only {expected.Count} findings");
        Assert.Equal(expected, await FindingsAsync(after));
        // Every event went through the log, none into the table, and every one was acknowledged after its commit.
        Assert.Equal(0, await StoredEventsAsync(after));
        Assert.Equal(log.Events.Count, log.Acknowledged);
        Assert.True(log.Events.Count >= Lines.Value.Length, $"{log.Events.Count} events in the log for {Lines.Value.Length} lines");
        Assert.True(log.AfterCommitCallbacks > 0);
        var rebuilt = after.Services.GetRequiredService<PartitionScoring>().Snapshots;
        if (snapshots)
        {
            // Each snapshot's position came from the log (the page being acknowledged included): nothing to replay.
            Assert.True(rebuilt.Restored > 0);
            Assert.Equal((0L, 0L), (rebuilt.Ignored, rebuilt.Replayed));
        }
        else
        {
            Assert.Equal(acknowledgedBefore, rebuilt.Replayed);
        }
    }

    public static TheoryData<string> Logs => ["Database", "InMemory"];

    private static IEventLog LogOf(string kind, LiveDbContext db) => kind == "InMemory"
        ? new InMemoryEventLog()
        : new DatabaseEventLog(db, Options.Create(new LiveOptions()));

    private async Task<LiveDbContext> SqliteAsync()
    {
        _sqlite = new SqliteConnection("Data Source=:memory:");
        await _sqlite.OpenAsync(Cancel);
        var db = new LiveDbContext(new DbContextOptionsBuilder<LiveDbContext>().UseSqlite(_sqlite).Options);
        await db.Database.EnsureCreatedAsync(Cancel);
        return db;
    }

    private static StoredEventRow Row(int partition, string id, int minute) => new()
    {
        EventKey = "crm:" + id,
        ClientId = "crm",
        UserId = "user-" + partition.ToString(CultureInfo.InvariantCulture),
        Partition = partition,
        TimestampTicks = new DateTimeOffset(2026, 12, 1, 9, minute, 0, TimeSpan.Zero).UtcTicks,
        Line = "{}",
        ReceivedTicks = DateTimeOffset.UtcNow.UtcTicks,
    };

    [Theory]
    [MemberData(nameof(Logs))]
    public async Task Both_logs_keep_the_contract_append_once_read_pending_in_order_acknowledge_and_replay(string kind)
    {
        await using var db = await SqliteAsync();
        var log = LogOf(kind, db);
        Assert.Null(await log.FirstArrivalDayAsync(Cancel));

        // Append: durable on return, idempotent on the event key, within a batch and across batches.
        Assert.Equal(3, await log.AppendAsync([Row(1, "a", 5), Row(2, "b", 1), Row(1, "c", 2)], null, Cancel));
        Assert.Equal(2, await log.AppendAsync([Row(1, "a", 5), Row(1, "d", 3), Row(3, "e", 4)], null, Cancel));
        Assert.Equal(0, await log.AppendAsync([Row(1, "c", 2)], null, Cancel));
        Assert.Equal(DateOnly.FromDateTime(new DateTime(2026, 12, 1)).DayNumber, await log.FirstArrivalDayAsync(Cancel));
        Assert.Equal([1, 2, 3], (await log.PendingPartitionsAsync(4, Cancel)).Order());
        Assert.Equal([1, 2], (await log.PendingPartitionsAsync(3, Cancel)).Order());

        // Read pending: in position (append) order, not event time, bounded; nothing replays before an acknowledgement.
        var page = await log.ReadPendingAsync(1, 2, Cancel);
        Assert.Equal(["crm:a", "crm:c"], page.Select(e => e.EventKey));
        Assert.True(page[0].Seq < page[1].Seq);
        Assert.Empty(await log.ReplayAsync(1, 0, 10, Cancel));

        // Acknowledge inside a transaction; whatever is left for after the commit runs after it.
        Func<CancellationToken, Task>? afterCommit;
        await using (var transaction = await db.Database.BeginTransactionAsync(Cancel))
        {
            afterCommit = await log.AcknowledgeAsync(db, 1, page, Cancel);
            await transaction.CommitAsync(Cancel);
        }

        if (afterCommit is not null)
        {
            await afterCommit(Cancel);
        }

        Assert.Equal(["crm:d"], (await log.ReadPendingAsync(1, 10, Cancel)).Select(e => e.EventKey));
        var replayed = await log.ReplayAsync(1, 0, 10, Cancel);
        Assert.Equal(["crm:a", "crm:c"], replayed.Select(e => e.EventKey));
        Assert.Equal(["crm:c"], (await log.ReplayAsync(1, replayed[0].Seq, 10, Cancel)).Select(e => e.EventKey));
        Assert.Equal(["crm:a"], (await log.ReplayAsync(1, 0, 1, Cancel)).Select(e => e.EventKey));
        // By position: only acknowledged events of that partition.
        var d = (await log.ReadPendingAsync(1, 10, Cancel))[0].Seq;
        Assert.Equal(["crm:c"], (await log.ReplayAsync(1, [replayed[1].Seq, d], Cancel)).Select(e => e.EventKey));
        Assert.Equal([1, 2, 3], (await log.PendingPartitionsAsync(4, Cancel)).Order());
    }
}
