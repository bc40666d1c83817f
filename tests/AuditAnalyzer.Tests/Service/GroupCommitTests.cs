using System.Data.Common;
using System.Text;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Service.IngestionWrites;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// Batches of concurrent requests committed in one transaction (<see cref="GroupCommits"/>), on SQLite and on the real
/// PostgreSQL: whichever request writes, each batch gets its own exact count of new events, and a batch the database
/// refuses fails alone.
/// </summary>
public sealed class GroupCommitTests : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-group-commit-").FullName;
    private PostgresDatabase? _postgres;
    private LiveHost? _host;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private async Task<LiveHost> StartAsync(string provider, string maxUncommitted = "8")
    {
        if (provider == "PostgreSql")
        {
            _postgres = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);
        }

        _host = LiveHost.Start(_directory, _postgres?.ConnectionString, new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Live:Scoring"] = "false",
            ["AuditAnalyzer:Live:MaxUncommittedBatches"] = maxUncommitted,
        });
        return _host;
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

    private static List<StoredEventRow> Rows(LiveHost host, string user, int count, int from)
    {
        var options = host.Services.GetRequiredService<IOptions<LiveOptions>>().Value;
        var body = Encoding.UTF8.GetBytes(IngestionLimitsTests.Lines("gc", user, count, from));
        return EventBatches.Parse(body, body.Length, "demo-crm", options, DateTimeOffset.UtcNow)!.Value.Rows;
    }

    private static async Task<int> StoredAsync(LiveHost host, string userPrefix)
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Events.CountAsync(e => e.UserId.StartsWith(userPrefix), Cancel);
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task Two_requests_batches_committed_together_keep_their_own_counts_when_one_repeats_the_others_events(string provider)
    {
        var host = await StartAsync(provider);
        await using var firstScope = host.Services.CreateAsyncScope();
        await using var secondScope = host.Services.CreateAsyncScope();
        var (firstDb, secondDb) = (firstScope.ServiceProvider.GetRequiredService<LiveDbContext>(), secondScope.ServiceProvider.GetRequiredService<LiveDbContext>());

        // Two requests' batches queued before either commits; the second repeats 100 of the first's event ids.
        var first = await GroupCommits.EnqueueAsync(firstDb, Rows(host, "gcs-a", 300, from: 0), 8, Cancel);
        var second = await GroupCommits.EnqueueAsync(secondDb, Rows(host, "gcs-a", 300, from: 200), 8, Cancel);

        var storedFirst = await first.CommitAsync(firstDb);
        // The first request's writer committed both batches in its transaction: the second's events are already stored.
        Assert.Equal(500, await StoredAsync(host, "gcs-"));
        var storedSecond = await second.CommitAsync(secondDb);

        Assert.Equal((300, 200), (storedFirst, storedSecond));
        Assert.Equal(500, await StoredAsync(host, "gcs-"));
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task A_batch_the_database_refuses_fails_alone_and_the_others_of_its_transaction_are_stored(string provider)
    {
        var host = await StartAsync(provider);
        await using var scope = host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        var broken = Rows(host, "gcf-b", 100, from: 1000);
        broken[50].Line = null!; // the line column is NOT NULL on both databases

        var before = await GroupCommits.EnqueueAsync(db, Rows(host, "gcf-a", 100, from: 0), 8, Cancel);
        var refused = await GroupCommits.EnqueueAsync(db, broken, 8, Cancel);
        var after = await GroupCommits.EnqueueAsync(db, Rows(host, "gcf-c", 100, from: 2000), 8, Cancel);

        Assert.Equal(100, await before.CommitAsync(db));
        // PostgreSQL refuses the row (not-null violation); Microsoft.Data.Sqlite refuses the null parameter before SQLite sees it.
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => refused.CommitAsync(db));
        Assert.True(failure is DbException or InvalidOperationException, failure.ToString());
        Assert.Equal(100, await after.CommitAsync(db));
        Assert.Equal(200, await StoredAsync(host, "gcf-"));
        Assert.Equal(0, await StoredAsync(host, "gcf-b"));
    }

    [Fact]
    public async Task Uncommitted_batches_beyond_the_limit_wait_for_room_instead_of_queueing_without_bound()
    {
        var host = await StartAsync("Sqlite", maxUncommitted: "2");
        await using var scope = host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();

        // MaxUncommittedBatches 2: the third batch waits until one of the first two is committed.
        var first = await GroupCommits.EnqueueAsync(db, Rows(host, "gcr-a", 10, from: 0), 2, Cancel);
        var second = await GroupCommits.EnqueueAsync(db, Rows(host, "gcr-a", 10, from: 10), 2, Cancel);
        var third = GroupCommits.EnqueueAsync(db, Rows(host, "gcr-a", 10, from: 20), 2, Cancel);
        await Task.Delay(200, Cancel);
        Assert.False(third.IsCompleted);

        Assert.Equal(10, await first.CommitAsync(db));
        Assert.Equal(10, await second.CommitAsync(db));
        Assert.Equal(10, await (await third.WaitAsync(TimeSpan.FromSeconds(10), Cancel)).CommitAsync(db));
        Assert.Equal(30, await StoredAsync(host, "gcr-"));
    }

    [Fact]
    public async Task On_PostgreSQL_an_event_another_instance_stores_while_the_batch_is_copied_is_counted_once_as_a_duplicate()
    {
        var host = await StartAsync("PostgreSql");
        await using var scope = host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        var rows = Rows(host, "gcx-a", 100, from: 0);

        // Another instance's transaction holds one of the batch's keys, not committed yet: the look-up of stored keys does
        // not see it, so the COPY writes it too and waits on the unique index until the other transaction ends.
        await using var other = new Npgsql.NpgsqlConnection(_postgres!.ConnectionString);
        await other.OpenAsync(Cancel);
        await using var transaction = await other.BeginTransactionAsync(Cancel);
        await using (var insert = new Npgsql.NpgsqlCommand(
            "INSERT INTO analyzer_live_events (event_key, client_id, user_id, \"partition\", timestamp_ticks, line, scored, received_ticks) "
            + "VALUES (@k, 'demo-crm', @u, @p, @t, @l, false, 0)", other, transaction))
        {
            insert.Parameters.AddWithValue("k", rows[10].EventKey);
            insert.Parameters.AddWithValue("u", rows[10].UserId);
            insert.Parameters.AddWithValue("p", rows[10].Partition);
            insert.Parameters.AddWithValue("t", rows[10].TimestampTicks);
            insert.Parameters.AddWithValue("l", rows[10].Line);
            await insert.ExecuteNonQueryAsync(Cancel);
        }

        var storing = GroupCommits.StoreAsync(db, rows, 8, Cancel);
        await Task.Delay(500, Cancel);
        Assert.False(storing.IsCompleted);
        await transaction.CommitAsync(Cancel);

        // The COPY's transaction fails on the key and is rolled back; the insert that skips stored keys counts it.
        Assert.Equal(99, await storing.WaitAsync(TimeSpan.FromSeconds(30), Cancel));
        Assert.Equal(100, await StoredAsync(host, "gcx-"));
    }
}
