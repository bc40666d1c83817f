using System.Diagnostics;
using System.Globalization;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Service.Orleans;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// AuditAnalyzer:Live:Runtime = orleans: a grain per partition on an in-process silo. Three real hosts on loopback share
/// the real PostgreSQL (membership and leases in it); one is killed mid-run; the survivors take its partitions over.
/// </summary>
public sealed class OrleansScoringTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-orleans-").FullName;
    private PostgresDatabase? _postgres;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static bool HasPostgres => Environment.GetEnvironmentVariable(PostgresDatabase.ServerVariable) is { Length: > 0 };

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    private static string Exports(IEnumerable<string> users, DateTimeOffset night) => string.Join('\n', users.Select(user =>
        $"{{\"event_id\":\"exp-{user}\",\"timestamp\":\"{night.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\",\"user_id\":\"{user}\",\"action\":\"export\",\"entity\":\"contact\",\"record_count\":48000}}"));

    private static string Reads(IEnumerable<string> users, DateTimeOffset day) => string.Join('\n', users.SelectMany(user => Enumerable.Range(0, 3).Select(i =>
        $"{{\"event_id\":\"read-{user}-{i}\",\"timestamp\":\"{day.AddMinutes(i * 7).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\",\"user_id\":\"{user}\",\"action\":\"read\",\"entity\":\"contact\",\"record_count\":1}}")));

    private static Dictionary<string, string?> Orleans(string instance, int siloPort, string masterKey) => new()
    {
        ["AuditAnalyzer:Live:Runtime"] = "orleans",
        ["AuditAnalyzer:Live:InstanceId"] = instance,
        ["AuditAnalyzer:Live:Partitions"] = "32",
        ["AuditAnalyzer:Live:Orleans:SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture),
        // Failure detection tuned for a test: a silo that stops answering is declared dead after two missed 2 s probes (1 s probes misfire on a loaded 2-core machine).
        ["AuditAnalyzer:Live:Orleans:Membership:ProbeTimeout"] = "00:00:02",
        ["AuditAnalyzer:Live:Orleans:Membership:NumMissedProbesLimit"] = "2",
        ["Crypto:MasterKey:Source"] = "File",
        ["Crypto:MasterKey:File"] = masterKey,
    };

    private static async Task<int> UnscoredAsync(LiveDbContext db) =>
        await db.Events.CountAsync(e => !e.Scored && e.ClientId != "identity", Cancel); // Identity's own events keep coming in-process

    private static async Task WaitUntilScoredAsync(LiveDbContext db, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (await UnscoredAsync(db) > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, Cancel);
        }
    }

    [Fact]
    public async Task Three_silos_share_the_partitions_and_when_one_is_killed_the_survivors_score_its_users_with_no_finding_lost_or_doubled()
    {
        Assert.SkipUnless(HasPostgres, $"needs PostgreSQL ({PostgresDatabase.ServerVariable})");
        _postgres = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);
        var night = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(3);
        var users = Enumerable.Range(0, 1000).Select(i => $"user{i:D4}").ToArray();
        var early = users[..500];
        var late = users[500..];
        var masterKey = Path.Combine(_directory, "master.key");
        await File.WriteAllTextAsync(masterKey, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), Cancel);

        await using var a = LiveHost.Start(Path.Combine(_directory, "a"), _postgres.ConnectionString, Orleans("host-a", ServerProcess.FreeLoopbackPort(), masterKey));
        await using var b = LiveHost.Start(Path.Combine(_directory, "b"), _postgres.ConnectionString, Orleans("host-b", ServerProcess.FreeLoopbackPort(), masterKey));
        var work = Directory.CreateDirectory(Path.Combine(_directory, "process-c")).FullName;
        var environment = Orleans("host-c", ServerProcess.FreeLoopbackPort(), masterKey).ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value);
        environment["Database__Provider"] = "PostgreSql";
        environment["Database__ConnectionString"] = _postgres.ConnectionString;
        environment["Identity__AllowHttp"] = "true";
        environment["Identity__DemoMode"] = "true";
        environment["AuditAnalyzer__DemoHistory__Enabled"] = "false";
        environment["Identity__MailPickupDirectory"] = Path.Combine(work, "mail");
        environment["AuditAnalyzer__Live__PollInterval"] = "00:00:00.2";
        environment["AuditAnalyzer__Live__LeaseDuration"] = "00:00:05";
        await using var process = await ServerProcess.StartAsync(environment, work, cancellationToken: Cancel);
        var c = LiveHost.Remote(process.BaseAddress);
        LiveHost[] hosts = [a, b, c];

        // The first half of the users, posted to all three hosts in turn.
        var writers = new List<string>();
        foreach (var host in hosts)
        {
            writers.Add(await host.WriterTokenAsync());
        }

        var batch = 0;
        foreach (var chunk in early.Chunk(25))
        {
            var i = batch++ % hosts.Length;
            var (_, _, body) = await hosts[i].PostEventsAsync(writers[i], Exports(chunk, night) + "\n" + Reads(chunk, night.AddHours(8)));
            Assert.Equal(chunk.Length * 4, body.GetProperty("stored").GetInt32());
        }

        await using var scope = a.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        await WaitUntilScoredAsync(db, TimeSpan.FromSeconds(60));
        Assert.Equal(0, await UnscoredAsync(db));
        var held = await db.Leases.AsNoTracking().ToListAsync(Cancel);
        var killedPartitions = held.Where(l => l.Owner.StartsWith("host-c#", StringComparison.Ordinal)).Select(l => l.Partition).ToHashSet();
        Assert.NotEmpty(killedPartitions); // the work was spread: the process host held partitions of its own
        Assert.Contains(held, l => l.Owner.StartsWith("host-a#", StringComparison.Ordinal));
        Assert.Contains(held, l => l.Owner.StartsWith("host-b#", StringComparison.Ordinal));
        var scoredBefore = (A: Total(a), B: Total(b));

        process.Kill(); // as a crash would: no lease is given back, the silo does not leave the cluster
        var killed = Stopwatch.StartNew();
        var takenOver = TakenOverAsync(_postgres.ConnectionString, killedPartitions);

        // The second half, and a client retrying the first half, against the survivors only.
        batch = 0;
        foreach (var chunk in late.Chunk(25))
        {
            var i = batch++ % 2;
            var (_, _, body) = await hosts[i].PostEventsAsync(writers[i], Exports(chunk, night) + "\n" + Reads(chunk, night.AddHours(8)));
            Assert.Equal(chunk.Length * 4, body.GetProperty("stored").GetInt32());
        }

        var (_, _, resent) = await b.PostEventsAsync(writers[1], Exports(early.Take(25), night));
        Assert.Equal((0, 25), (resent.GetProperty("stored").GetInt32(), resent.GetProperty("duplicates").GetInt32()));
        var stored = await db.Events.AsNoTracking().Where(e => e.ClientId != "identity").Select(e => e.Partition).ToListAsync(Cancel);
        Assert.Contains(stored, killedPartitions.Contains); // events wait on the killed host's partitions

        await WaitUntilScoredAsync(db, TimeSpan.FromSeconds(60));
        var scored = killed.Elapsed;
        Assert.Equal(0, await UnscoredAsync(db));
        var takeover = await takenOver;
        TestContext.Current.SendDiagnosticMessage($"host-c's partitions were the survivors' {takeover.TotalSeconds:F1} s after it was killed; all events scored after {scored.TotalSeconds:F1} s");
        Assert.True(takeover < TimeSpan.FromSeconds(10), $"the survivors took {takeover} to take the killed host's partitions over");
        Assert.True(scored < TimeSpan.FromSeconds(30), $"the survivors took {scored} to score the killed host's events");

        // Every expected finding, exactly once.
        var findings = await db.Findings.AsNoTracking().Where(f => f.UserId.StartsWith("user")).Select(f => new { f.UserId, f.Id, f.Detector }).ToListAsync(Cancel);
        var exports = findings.Where(f => f.Detector == findings.First(g => g.UserId == users[0]).Detector).ToList();
        Assert.Equal(users, exports.Select(f => f.UserId).Order(StringComparer.Ordinal));
        Assert.Equal(findings.Count, findings.Select(f => f.Id).Distinct().Count());

        // The killed host's partitions are the survivors' now, and both survivors scored work after the kill.
        var after = await db.Leases.AsNoTracking().Where(l => killedPartitions.Contains(l.Partition)).ToListAsync(Cancel);
        Assert.All(after, l => Assert.False(l.Owner.StartsWith("host-c#", StringComparison.Ordinal), $"partition {l.Partition} is still host-c's"));
        Assert.True(Total(a) > scoredBefore.A, "host a scored nothing after the kill");
        Assert.True(Total(b) > scoredBefore.B, "host b scored nothing after the kill");
    }

    /// <summary>How long after now until every one of <paramref name="partitions"/> is held by a survivor (polled every 100 ms, at most 60 s).</summary>
    private static async Task<TimeSpan> TakenOverAsync(string connectionString, HashSet<int> partitions)
    {
        var clock = Stopwatch.StartNew();
        // Its own context: the test goes on using the shared one meanwhile.
        await using var db = new LiveDbContext(new DbContextOptionsBuilder<LiveDbContext>().UseNpgsql(connectionString).Options);
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            var owners = await db.Leases.AsNoTracking().Where(l => partitions.Contains(l.Partition)).Select(l => l.Owner).ToListAsync(Cancel);
            if (owners.Count == partitions.Count && owners.All(o => !o.StartsWith("host-c#", StringComparison.Ordinal)))
            {
                return clock.Elapsed;
            }

            await Task.Delay(100, Cancel);
        }

        return clock.Elapsed;
    }

    private static long Total(LiveHost host) => host.Services.GetRequiredService<OrleansScoringWork>().EventsByPartition.Values.Sum();

    [Fact]
    public async Task On_SQLite_the_orleans_runtime_finds_what_the_lease_runtime_finds_for_the_same_events()
    {
        var night = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(3);
        var users = Enumerable.Range(0, 40).Select(i => $"sq{i:D2}").ToArray();
        var lines = Exports(users[..20], night) + "\n" + Reads(users, night.AddHours(9));

        async Task<List<(string UserId, string Id, string Detector)>> RunAsync(string name, IDictionary<string, string?> settings)
        {
            await using var host = LiveHost.Start(Path.Combine(_directory, name), extra: settings);
            var (_, _, body) = await host.PostEventsAsync(await host.WriterTokenAsync(), lines);
            Assert.Equal(20 + (40 * 3), body.GetProperty("stored").GetInt32());
            await using var scope = host.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
            await WaitUntilScoredAsync(db, TimeSpan.FromSeconds(30));
            Assert.Equal(0, await UnscoredAsync(db));
            await Task.Delay(500, Cancel); // one more step: findings that close by the clock
            var grains = host.Services.GetService<OrleansScoringWork>();
            Assert.Equal(settings["AuditAnalyzer:Live:Runtime"] == "orleans", grains is not null && Total(host) >= body.GetProperty("stored").GetInt32()); // scored by the grains (Identity's own events too), or not at all by them
            return [.. (await db.Findings.AsNoTracking().Where(f => f.UserId.StartsWith("sq")).ToListAsync(Cancel))
                .Select(f => (f.UserId, f.Id, f.Detector)).Order()];
        }

        var leases = await RunAsync("leases", new Dictionary<string, string?> { ["AuditAnalyzer:Live:Runtime"] = "leases" });
        var orleans = await RunAsync("orleans", new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Live:Runtime"] = "orleans",
            ["AuditAnalyzer:Live:Orleans:SiloPort"] = ServerProcess.FreeLoopbackPort().ToString(CultureInfo.InvariantCulture),
        });

        Assert.Equal(20, leases.Select(f => f.UserId).Distinct().Count()); // the exports were found: the comparison means something
        Assert.Equal(leases, orleans);
    }

    [Theory]
    [InlineData("akka", "SiloPort", "11111", "AuditAnalyzer:Live:Runtime")]
    [InlineData("orleans", "SiloPort", "70000", "AuditAnalyzer:Live:Orleans:SiloPort")]
    [InlineData("orleans", "AdvertisedAddress", "silo.example", "AuditAnalyzer:Live:Orleans:AdvertisedAddress")]
    public async Task A_runtime_setting_that_cannot_work_stops_start_up_naming_the_setting(string runtime, string orleansKey, string value, string named)
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["AuditAnalyzer__Live__Runtime"] = runtime,
            [$"AuditAnalyzer__Live__Orleans__{orleansKey}"] = value,
        }, Cancel);

        Assert.Equal(78, exitCode);
        Assert.Contains(named, output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }
}
