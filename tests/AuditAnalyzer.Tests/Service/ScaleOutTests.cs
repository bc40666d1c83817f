using System.Globalization;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>Two real hosts on loopback sharing the real PostgreSQL: one stops mid-run, the other takes its partitions over.</summary>
public sealed class ScaleOutTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-scale-").FullName;
    private PostgresDatabase _postgres = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _postgres = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);

    public async ValueTask DisposeAsync()
    {
        await _postgres.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private static string Exports(IEnumerable<string> users, DateTimeOffset night) => string.Join('\n', users.Select(user =>
        $"{{\"event_id\":\"exp-{user}\",\"timestamp\":\"{night.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\",\"user_id\":\"{user}\",\"action\":\"export\",\"entity\":\"contact\",\"record_count\":48000}}"));

    /// <summary>Findings name users by pseudonym; the test reads which user each one is from the database it set up.</summary>
    private async Task<List<(string User, string Id)>> WaitForFindingsAsync(LiveHost host, string token, int expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var (_, body) = await host.GetFindingsAsync(token, "?limit=1000");
            var users = await UsersByPseudonymAsync();
            var findings = body.EnumerateArray().Select(f => (users.GetValueOrDefault(f.GetProperty("user").GetString()!, "?"), f.GetProperty("id").GetString()!)).ToList();
            if (findings.Count >= expected || DateTime.UtcNow > deadline)
            {
                return findings;
            }

            await Task.Delay(250, Cancel);
        }
    }

    private async Task<Dictionary<string, string>> UsersByPseudonymAsync()
    {
        await using var db = new LiveDbContext(new DbContextOptionsBuilder<LiveDbContext>().UseNpgsql(_postgres.ConnectionString).Options);
        return (await db.Findings.AsNoTracking().Select(f => new { f.Pseudonym, f.UserId }).ToListAsync(Cancel))
            .DistinctBy(f => f.Pseudonym).ToDictionary(f => f.Pseudonym, f => f.UserId, StringComparer.Ordinal);
    }

    [Fact]
    public async Task When_one_of_two_hosts_stops_the_other_scores_its_partitions_and_no_finding_is_lost_or_doubled()
    {
        var night = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(3);
        string[] early = ["u1", "u2", "u3", "u4", "u5", "u6"];
        string[] late = ["u7", "u8", "u9", "u10", "u11", "u12"];
        var a = LiveHost.Start(Path.Combine(_directory, "a"), _postgres.ConnectionString, new Dictionary<string, string?> { ["AuditAnalyzer:Live:InstanceId"] = "host-a" });
        await using var b = LiveHost.Start(Path.Combine(_directory, "b"), _postgres.ConnectionString, new Dictionary<string, string?> { ["AuditAnalyzer:Live:InstanceId"] = "host-b" });
        var auditor = await b.AuditorTokenAsync();

        var first = await a.PostEventsAsync(await a.WriterTokenAsync(), Exports(early, night));
        Assert.Equal(6, first.Body.GetProperty("stored").GetInt32());
        var before = await WaitForFindingsAsync(b, auditor, early.Length);
        Assert.Equal(early.Order(), before.Select(f => f.User).Order());

        await a.DisposeAsync(); // mid-run: host a goes away with the partitions it held

        var writer = await b.WriterTokenAsync();
        var resent = await b.PostEventsAsync(writer, Exports(early, night)); // a client retrying against the survivor
        var second = await b.PostEventsAsync(writer, Exports(late, night));
        Assert.Equal((0, 6), (resent.Body.GetProperty("stored").GetInt32(), resent.Body.GetProperty("duplicates").GetInt32()));
        Assert.Equal(6, second.Body.GetProperty("stored").GetInt32());

        var after = await WaitForFindingsAsync(b, auditor, early.Length + late.Length);
        Assert.Equal(early.Concat(late).Order(), after.Select(f => f.User).Order()); // one finding per user: none lost, none doubled
        Assert.Equal(before.OrderBy(f => f.User).Select(f => f.Id), after.Where(f => early.Contains(f.User)).OrderBy(f => f.User).Select(f => f.Id));

        await using var scope = b.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        // Identity's own events (the token requests above) reach the table in-process a moment later: only the posted ones count here.
        Assert.Equal(0, await db.Events.CountAsync(e => !e.Scored && e.ClientId != "identity", Cancel));
        var leases = await db.Leases.AsNoTracking().ToListAsync(Cancel);
        Assert.NotEmpty(leases); // every partition that has had work is the survivor's
        Assert.All(leases, lease => Assert.Equal("host-b", lease.Owner));
    }

    [Fact]
    public async Task A_dead_hosts_partitions_wait_for_its_leases_to_expire_and_are_then_scored_by_the_survivor()
    {
        var night = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(3);
        string[] early = ["d1", "d2", "d3"];
        string[] late = ["d4", "d5", "d6"];
        var a = LiveHost.Start(Path.Combine(_directory, "a"), _postgres.ConnectionString, new Dictionary<string, string?> { ["AuditAnalyzer:Live:InstanceId"] = "host-a" });
        Assert.Equal(3, (await a.PostEventsAsync(await a.WriterTokenAsync(), Exports(early, night))).Body.GetProperty("stored").GetInt32());
        Assert.Equal(3, (await WaitForFindingsAsync(a, await a.AuditorTokenAsync(), early.Length)).Count);
        await a.DisposeAsync();

        // A host died rather than stopped: its leases are still in the table, valid for another 15 seconds. They are
        // written under an owner of their own: host a's stop can still be giving back its leases (owner host-a) after
        // DisposeAsync returns, and would delete these if they carried its name.
        var expiry = DateTimeOffset.UtcNow.AddSeconds(15);
        await using (var db = new LiveDbContext(new DbContextOptionsBuilder<LiveDbContext>().UseNpgsql(_postgres.ConnectionString).Options))
        {
            await db.Leases.ExecuteDeleteAsync(Cancel);
            db.Leases.AddRange(Enumerable.Range(0, 4).Select(p => new PartitionLeaseRow { Partition = p, Owner = "host-dead", ExpiresTicks = expiry.UtcTicks }));
            await db.SaveChangesAsync(Cancel);
        }

        await using var b = LiveHost.Start(Path.Combine(_directory, "b"), _postgres.ConnectionString, new Dictionary<string, string?> { ["AuditAnalyzer:Live:InstanceId"] = "host-b" });
        var auditor = await b.AuditorTokenAsync();
        Assert.Equal(3, (await b.PostEventsAsync(await b.WriterTokenAsync(), Exports(late, night))).Body.GetProperty("stored").GetInt32());
        await Task.Delay(1000, Cancel); // several polls of host b

        var (_, whileHeld) = await b.GetFindingsAsync(auditor, "?limit=1000");
        Assert.True(DateTimeOffset.UtcNow < expiry, "the check ran after the dead host's leases expired; it proves nothing");
        var users = await UsersByPseudonymAsync();
        Assert.Equal(early.Order(), whileHeld.EnumerateArray().Select(f => users[f.GetProperty("user").GetString()!]).Order());

        var after = await WaitForFindingsAsync(b, auditor, early.Length + late.Length);
        Assert.Equal(early.Concat(late).Order(), after.Select(f => f.User).Order());
        Assert.True(DateTimeOffset.UtcNow >= expiry);
    }

    [Fact]
    public async Task A_killed_host_process_loses_its_partitions_to_the_survivor_once_its_leases_expire()
    {
        var night = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(3);
        string[] early = ["k1", "k2", "k3"];
        string[] late = ["k4", "k5", "k6"];
        var work = Directory.CreateDirectory(Path.Combine(_directory, "process-a")).FullName;
        // One installation, one master key: the secrets in the shared database (the pseudonym key) are wrapped by it,
        // and a host with another key refuses to start on that database.
        var masterKey = Path.Combine(_directory, "master.key");
        await File.WriteAllTextAsync(masterKey, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), Cancel);
        await using var process = await ServerProcess.StartAsync(new Dictionary<string, string?>
        {
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = masterKey,
            ["Database__Provider"] = "PostgreSql",
            ["Database__ConnectionString"] = _postgres.ConnectionString,
            ["Identity__AllowHttp"] = "true",
            ["Identity__DemoMode"] = "true",
            ["AuditAnalyzer__DemoHistory__Enabled"] = "false",
            ["Identity__MailPickupDirectory"] = Path.Combine(work, "mail"),
            ["AuditAnalyzer__Live__InstanceId"] = "host-a",
            ["AuditAnalyzer__Live__PollInterval"] = "00:00:00.2",
            ["AuditAnalyzer__Live__LeaseDuration"] = "00:00:04",
            ["AuditAnalyzer__Live__Partitions"] = "4",
        }, work, cancellationToken: Cancel);
        var a = LiveHost.Remote(process.BaseAddress);
        Assert.Equal(3, (await a.PostEventsAsync(await a.WriterTokenAsync(), Exports(early, night))).Body.GetProperty("stored").GetInt32());
        var before = await WaitForFindingsAsync(a, await a.AuditorTokenAsync(), early.Length);
        Assert.Equal(early.Order(), before.Select(f => f.User).Order());

        process.Kill(); // as a crash would: no lease is given back

        await using var b = LiveHost.Start(Path.Combine(_directory, "b"), _postgres.ConnectionString, new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Live:InstanceId"] = "host-b",
            ["Crypto:MasterKey:Source"] = "File",
            ["Crypto:MasterKey:File"] = masterKey,
        });
        Assert.Equal(3, (await b.PostEventsAsync(await b.WriterTokenAsync(), Exports(late, night))).Body.GetProperty("stored").GetInt32());

        var after = await WaitForFindingsAsync(b, await b.AuditorTokenAsync(), early.Length + late.Length);
        Assert.Equal(early.Concat(late).Order(), after.Select(f => f.User).Order());
        Assert.Equal(before.OrderBy(f => f.User).Select(f => f.Id), after.Where(f => early.Contains(f.User)).OrderBy(f => f.User).Select(f => f.Id));
        // The killed host's leases of partitions without new work are taken over too, once expired (4 s).
        await using var scope = b.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        var leases = await db.Leases.AsNoTracking().ToListAsync(Cancel);
        while (leases.Any(l => l.Owner != "host-b") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250, Cancel);
            leases = await db.Leases.AsNoTracking().ToListAsync(Cancel);
        }

        Assert.NotEmpty(leases);
        Assert.All(leases, lease => Assert.Equal("host-b", lease.Owner));
    }
}
