using System.Globalization;
using System.Net;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Service.EventLog;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// What the background scorer looks at on each poll: which partitions have work (a probe per partition, on SQLite and on
/// the real PostgreSQL), and that a backlog larger than one page is worked off in one step.
/// </summary>
public sealed class PendingScoringTests : IAsyncDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-pending-").FullName;
    private PostgresDatabase? _postgres;
    private SqliteConnection? _sqlite;
    private LiveHost? _host;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

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

        if (_sqlite is not null)
        {
            await _sqlite.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A last write of the host's dispose; the temporary folder is left behind.
        }
    }

    private async Task<LiveDbContext> OpenAsync(string provider)
    {
        var options = new DbContextOptionsBuilder<LiveDbContext>();
        if (provider == "PostgreSql")
        {
            _postgres ??= await PostgresDatabase.CreateAsync(cancellationToken: Cancel);
            options.UseNpgsql(_postgres.ConnectionString);
        }
        else
        {
            if (_sqlite is null)
            {
                _sqlite = new SqliteConnection("Data Source=:memory:");
                await _sqlite.OpenAsync(Cancel);
            }

            options.UseSqlite(_sqlite);
        }

        var db = new LiveDbContext(options.Options);
        await db.Database.EnsureCreatedAsync(Cancel);
        return db;
    }

    private static StoredEventRow Row(int partition, int n, bool scored) => new()
    {
        EventKey = $"test:p{partition}-{n}",
        ClientId = "test",
        UserId = $"user-{partition}",
        Partition = partition,
        TimestampTicks = Now.UtcTicks,
        Line = "{}",
        Scored = scored,
        ReceivedTicks = Now.UtcTicks,
    };

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task Partitions_with_unscored_events_or_an_expired_lease_are_worth_a_step_and_no_others(string provider)
    {
        // 50 partitions: more than one statement's worth of probes.
        const int partitions = 50;
        await using var db = await OpenAsync(provider);
        db.Events.AddRange(
            Row(3, 1, scored: false), Row(3, 2, scored: true),
            Row(5, 1, scored: true), Row(5, 2, scored: true), // all scored: nothing to do
            Row(40, 1, scored: false),
            Row(49, 1, scored: false));
        db.Leases.AddRange(
            new PartitionLeaseRow { Partition = 9, Owner = "dead", ExpiresTicks = (Now - TimeSpan.FromMinutes(1)).UtcTicks },
            new PartitionLeaseRow { Partition = 5, Owner = "alive", ExpiresTicks = (Now + TimeSpan.FromMinutes(1)).UtcTicks });
        await db.SaveChangesAsync(Cancel);

        var worth = await PartitionScoring.WorthScoringAsync(new DatabaseEventLog(db, Options.Create(new LiveOptions())), db, TimeProvider.System, partitions, Cancel);

        Assert.Equal([3, 9, 40, 49], worth.Order());
    }

    [Fact]
    public async Task A_backlog_of_more_than_a_page_in_one_partition_is_scored_in_one_poll()
    {
        _host = LiveHost.Start(_directory, extra: new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Live:Scoring"] = "false", // the test polls itself
            ["Identity:DemoMode"] = "true",
        });
        var token = await _host.WriterTokenAsync();
        var from = Now - TimeSpan.FromMinutes(30);
        var lines = Enumerable.Range(0, 4_500).Select(i => string.Create(CultureInfo.InvariantCulture,
            $"{{\"event_id\":\"b-{i}\",\"timestamp\":\"{from.AddMilliseconds(i * 100):yyyy-MM-dd'T'HH:mm:ss.fff'Z'}\",\"user_id\":\"one-user\",\"action\":\"read\",\"entity\":\"contact\"}}"));
        var (status, _, body) = await _host.PostEventsAsync(token, string.Join('\n', lines));
        Assert.True(status == HttpStatusCode.OK, $"events refused: {(int)status} {body}");
        Assert.Equal(4_500, body.GetProperty("stored").GetInt32());

        await _host.Services.GetRequiredService<LiveScoring>().PollAsync(Cancel);

        await using var scope = _host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        // (The demo's own sign-in and token events are stored too, for other users.)
        Assert.Equal(4_500, await db.Events.CountAsync(e => e.UserId == "one-user" && e.Scored, Cancel));
        Assert.Equal(0, await db.Events.CountAsync(e => e.UserId == "one-user" && !e.Scored, Cancel));
    }
}
