using System.Net;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// The stored, duplicate and rejected counts of <c>POST /analyzer/events</c> through the real host, on SQLite and on
/// the real PostgreSQL: each provider stores a batch with its own single insert, and the counts must not depend on it.
/// </summary>
public sealed class IngestionStoreTests : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-ingest-store-").FullName;
    private PostgresDatabase? _postgres;
    private LiveHost? _host;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private async Task<LiveHost> StartAsync(string provider)
    {
        if (provider == "PostgreSql")
        {
            _postgres = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);
        }

        _host = LiveHost.Start(_directory, _postgres?.ConnectionString, new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Live:Scoring"] = "false",
            ["AuditAnalyzer:Live:MaxConcurrentBatches"] = "4",
            ["AuditAnalyzer:Live:MaxQueuedBatches"] = "64",
            ["AuditAnalyzer:Live:BatchQueueTimeout"] = "00:01:00",
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

    private static async Task<int> StoredAsync(LiveHost host, string userPrefix)
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Events.CountAsync(e => e.UserId.StartsWith(userPrefix), Cancel);
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task Bad_lines_repeats_and_events_stored_before_are_counted_as_before(string provider)
    {
        var host = await StartAsync(provider);
        var token = await host.WriterTokenAsync();
        var noon = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(12).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        string Line(string id, string user, string action) => $"{{\"event_id\":\"{id}\",\"timestamp\":\"{noon}\",\"user_id\":\"{user}\",\"action\":\"{action}\"}}";
        var keyless = $"{{\"timestamp\":\"{noon}\",\"user_id\":\"cnt-ann\",\"action\":\"list\"}}";
        var batch = string.Join('\n',
            Line("c-1", "cnt-ann", "read"),
            "{\"event_id\":\"c-2\",\"timestamp\":",
            Line("c-3", "cnt-ann", "teleport"),
            "",
            Line("c-1", "cnt-ann", "read"), // the same event twice in one batch
            keyless,
            keyless, // keyed by a hash of its bytes: the same again
            Line("c-8", new string('u', 201), "read"),
            Line("c-9", "cnt-bob", "search"));

        var (status, _, first) = await host.PostEventsAsync(token, batch);
        var (_, _, again) = await host.PostEventsAsync(token, batch);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal((8, 3, 2, 3), (first.GetProperty("lines").GetInt32(), first.GetProperty("stored").GetInt32(),
            first.GetProperty("duplicates").GetInt32(), first.GetProperty("rejected").GetInt32()));
        var errors = first.GetProperty("errors").EnumerateArray().Select(e => (e.GetProperty("line").GetInt64(), e.GetProperty("reason").GetString())).ToList();
        Assert.Equal([(2L, "broken_json"), (3L, "unknown_action"), (8L, "bad_value")], errors);
        Assert.Equal((8, 0, 5, 3), (again.GetProperty("lines").GetInt32(), again.GetProperty("stored").GetInt32(),
            again.GetProperty("duplicates").GetInt32(), again.GetProperty("rejected").GetInt32()));
        Assert.Equal(3, await StoredAsync(host, "cnt-"));
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task Concurrent_batches_that_overlap_store_every_event_once_and_count_it_once(string provider)
    {
        var host = await StartAsync(provider);
        var token = await host.WriterTokenAsync();

        // Eight batches of 300 events sent at once, each sharing 200 event ids with the next: 1,000 distinct events.
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            host.PostEventsAsync(token, IngestionLimitsTests.Lines("ov", "ovl-x", 300, from: i * 100))));

        Assert.All(results, r => Assert.Equal(HttpStatusCode.OK, r.Status));
        Assert.Equal(1000, results.Sum(r => r.Body.GetProperty("stored").GetInt32()));
        Assert.Equal(1400, results.Sum(r => r.Body.GetProperty("duplicates").GetInt32()));
        Assert.Equal(1000, await StoredAsync(host, "ovl-"));
    }
}
