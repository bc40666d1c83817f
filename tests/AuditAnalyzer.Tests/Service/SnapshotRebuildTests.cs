using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Service.Snapshots;
using CrmSecurity.AuditAnalyzer.Synthetic;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// Partition snapshots through the real host, on SQLite and the real PostgreSQL: a generated organisation's log is sent
/// over HTTP in two parts, and a host restarted between them continues from its snapshots (the replayed events are
/// counted) and ends with exactly the findings of a host that was never restarted. A damaged snapshot falls back to
/// replaying the whole partition. The tests score with the host's own scorer (<see cref="LiveScoring.PollAsync"/>).
/// </summary>
public sealed class SnapshotRebuildTests : IAsyncDisposable
{
    private static readonly Lazy<string[]> Lines = new(() =>
    {
        var folder = Directory.CreateTempSubdirectory("crm-snapshot-live-").FullName;
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

    /// <summary>The Monday six weeks ago: the history ends ten days ago, inside the live store's retention (events older are refused).</summary>
    private static DateOnly RecentMonday()
    {
        var day = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-40);
        return day.AddDays(-(((int)day.DayOfWeek + 6) % 7));
    }

    private readonly List<string> _directories = [];
    private readonly List<PostgresDatabase> _databases = [];

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static string[] FirstPart => Lines.Value[..(Lines.Value.Length * 6 / 10)];

    private static string[] SecondPart => Lines.Value[(Lines.Value.Length * 6 / 10)..];

    /// <summary>A place for one installation: a folder, and a database of its own on PostgreSQL.</summary>
    private async Task<(string Directory, string? Postgres)> InstallationAsync(string provider)
    {
        var directory = Directory.CreateTempSubdirectory("crm-snapshot-host-").FullName;
        _directories.Add(directory);
        if (provider != "PostgreSql")
        {
            return (directory, null);
        }

        var database = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);
        _databases.Add(database);
        return (directory, database.ConnectionString);
    }

    private static LiveHost Start((string Directory, string? Postgres) place, int snapshotEvery, string interval = "1.00:00:00") =>
        LiveHost.Start(place.Directory, place.Postgres, new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Live:Scoring"] = "false", // the test polls itself
            ["AuditAnalyzer:Live:SnapshotEveryEvents"] = snapshotEvery.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["AuditAnalyzer:Live:SnapshotInterval"] = interval,
        });

    private static PartitionSnapshots Snapshots(LiveHost host) => host.Services.GetRequiredService<PartitionScoring>().Snapshots;



    private static async Task<List<string>> FindingsAsync(LiveHost host)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var rows = await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Findings.AsNoTracking()
            .Select(f => new { f.Id, f.Json }).ToListAsync(Cancel);
        return [.. rows.OrderBy(r => r.Id, StringComparer.Ordinal).Select(r => $"{r.Id} {r.Json}")];
    }

    /// <summary>Scored events each partition's snapshot does not cover: what a rebuild from it replays.</summary>
    private static async Task<long> UncoveredAsync(LiveHost host)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        var covered = await db.Set<PartitionSnapshotRow>().AsNoTracking().ToDictionaryAsync(s => s.Partition, s => s.CoveredSeq, Cancel);
        var scored = await db.Events.AsNoTracking().Where(e => e.Scored).Select(e => new { e.Partition, e.Seq }).ToListAsync(Cancel);
        return scored.Count(e => e.Seq > covered.GetValueOrDefault(e.Partition));
    }

    private static async Task<int> SnapshotRowsAsync(LiveHost host)
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Set<PartitionSnapshotRow>().CountAsync(Cancel);
    }

    private async Task<List<string>> NeverRestartedAsync(string provider)
    {
        await using var control = Start(await InstallationAsync(provider), snapshotEvery: 0);
        await control.PostAllAsync(FirstPart);
        await control.ScoreAllAsync(100);
        await control.PostAllAsync(SecondPart);
        await control.ScoreAllAsync(100);
        return await FindingsAsync(control);
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task A_restarted_host_continues_from_its_snapshots_and_ends_with_the_findings_of_one_never_restarted(string provider)
    {
        var expected = await NeverRestartedAsync(provider);
        var place = await InstallationAsync(provider);

        var before = Start(place, snapshotEvery: 1); // a snapshot with every scoring transaction: nothing to replay
        await before.PostAllAsync(FirstPart);
        await before.ScoreAllAsync(100);
        Assert.True(Snapshots(before).Written > 0);
        Assert.Equal(4, await SnapshotRowsAsync(before)); // every partition has users of the generated organisation
        await before.DisposeAsync();

        await using var after = Start(place, snapshotEvery: 1);
        await after.PostAllAsync(SecondPart);
        await after.ScoreAllAsync(100);

        var snapshots = Snapshots(after);
        Assert.Equal((4L, 0L, 0L), (snapshots.Restored, snapshots.Ignored, snapshots.Replayed));
        Assert.Equal(expected.Count, (await FindingsAsync(after)).Count);
        Assert.Equal(expected, await FindingsAsync(after));
        Assert.True(expected.Count >= 5, $"the organisation raised only {expected.Count} findings");
    }

    [Fact]
    public async Task A_rebuild_replays_only_the_events_scored_after_the_snapshot()
    {
        var place = await InstallationAsync("Sqlite");
        var before = Start(place, snapshotEvery: 3_000); // the first transaction and then every 3,000 events
        await before.PostAllAsync(FirstPart);
        await before.ScoreAllAsync(100);
        var uncovered = await UncoveredAsync(before);
        var total = FirstPart.Length;
        Assert.Equal(4, await SnapshotRowsAsync(before));
        await before.DisposeAsync();

        await using var after = Start(place, snapshotEvery: 3_000);
        await after.PostAllAsync(SecondPart);
        await after.ScoreAllAsync(100);

        var snapshots = Snapshots(after);
        Assert.Equal(4, snapshots.Restored);
        Assert.Equal(uncovered, snapshots.Replayed);
        Assert.InRange(uncovered, 1, total / 2);
    }

    [Fact]
    public async Task A_damaged_snapshot_makes_the_rebuild_replay_the_whole_partition()
    {
        var place = await InstallationAsync("Sqlite");
        var before = Start(place, snapshotEvery: 1);
        await before.PostAllAsync(FirstPart);
        await before.ScoreAllAsync(100);
        long scored;
        await using (var scope = before.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
            scored = await db.Events.CountAsync(e => e.Scored, Cancel);
            // A byte of every snapshot flipped (a torn page, an edited row): the checksum no longer matches.
            foreach (var row in await db.Set<PartitionSnapshotRow>().ToListAsync(Cancel))
            {
                row.Data = [.. row.Data];
                row.Data[^1] ^= 0xFF;
            }

            await db.SaveChangesAsync(Cancel);
        }

        Assert.Equal(4, await SnapshotRowsAsync(before));

        await before.DisposeAsync();

        await using var after = Start(place, snapshotEvery: 1);
        await after.PostAllAsync(SecondPart);
        await after.ScoreAllAsync(100);

        var snapshots = Snapshots(after);
        Assert.Equal((0L, 4L, scored), (snapshots.Restored, snapshots.Ignored, snapshots.Replayed));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var database in _databases)
        {
            await database.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
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
}
