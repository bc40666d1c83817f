using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>Partition leases on the real PostgreSQL server that scripts/test.sh starts.</summary>
public sealed class PartitionLeaseTests : IAsyncLifetime
{
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(30);
    private static readonly DateTimeOffset T0 = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);
    private PostgresDatabase _postgres = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _postgres = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);
        await using var db = Open();
        await db.Database.EnsureCreatedAsync(Cancel);
    }

    public async ValueTask DisposeAsync() => await _postgres.DisposeAsync();

    private LiveDbContext Open() => new(new DbContextOptionsBuilder<LiveDbContext>().UseNpgsql(_postgres.ConnectionString).Options);

    private async Task<LeaseOutcome> AcquireAsync(int partition, string owner, DateTimeOffset now)
    {
        await using var db = Open();
        return await PartitionLeases.TryAcquireAsync(db, partition, owner, now, Duration, Cancel);
    }

    [Fact]
    public async Task Two_schedulers_racing_for_the_same_partitions_never_both_hold_one()
    {
        // Each round both instances go for every partition at the same moment, on their own connections:
        // first for free rows (INSERT race), then for rows expiring under them (UPDATE race).
        const int partitions = 24;
        for (var round = 0; round < 4; round++)
        {
            var now = T0 + (round * (Duration + TimeSpan.FromSeconds(1)));
            var a = Enumerable.Range(0, partitions).Select(p => AcquireAsync(p, "a", now)).ToList();
            var b = Enumerable.Range(0, partitions).Select(p => AcquireAsync(p, "b", now)).ToList();
            await Task.WhenAll(a.Concat(b));
            var fromA = await Task.WhenAll(a);
            var fromB = await Task.WhenAll(b);

            await using var db = Open();
            var owners = await db.Leases.AsNoTracking().ToDictionaryAsync(l => l.Partition, l => l.Owner, Cancel);
            for (var p = 0; p < partitions; p++)
            {
                var holders = new[] { ("a", fromA[p]), ("b", fromB[p]) }.Where(x => x.Item2 != LeaseOutcome.Refused).Select(x => x.Item1).ToList();
                Assert.True(holders.Count == 1, $"round {round}, partition {p}: held by [{string.Join(", ", holders)}]");
                Assert.Equal(holders[0], owners[p]);
            }
        }
    }

    [Fact]
    public async Task An_expired_lease_is_taken_over_and_its_old_holder_can_no_longer_renew_it()
    {
        Assert.Equal(LeaseOutcome.Acquired, await AcquireAsync(7, "a", T0));
        Assert.Equal(LeaseOutcome.Refused, await AcquireAsync(7, "b", T0 + TimeSpan.FromSeconds(10)));
        Assert.Equal(LeaseOutcome.Renewed, await AcquireAsync(7, "a", T0 + TimeSpan.FromSeconds(20))); // now valid until T0 + 50 s
        Assert.Equal(LeaseOutcome.Refused, await AcquireAsync(7, "b", T0 + TimeSpan.FromSeconds(45)));

        Assert.Equal(LeaseOutcome.Acquired, await AcquireAsync(7, "b", T0 + TimeSpan.FromSeconds(51)));

        await using var db = Open();
        Assert.False(await PartitionLeases.RenewAsync(db, 7, "a", T0 + TimeSpan.FromSeconds(52), Duration, Cancel));
        Assert.Equal(LeaseOutcome.Refused, await AcquireAsync(7, "a", T0 + TimeSpan.FromSeconds(52)));
        Assert.Equal("b", (await db.Leases.AsNoTracking().SingleAsync(l => l.Partition == 7, Cancel)).Owner);
    }
}
