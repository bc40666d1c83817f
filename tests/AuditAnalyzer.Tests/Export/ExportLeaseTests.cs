using CrmSecurity.AuditAnalyzer.Export;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

/// <summary>The forwarding lease on the real PostgreSQL server that scripts/test.sh starts.</summary>
public sealed class ExportLeaseTests : IAsyncLifetime
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

    private ExportDbContext Open() => new(new DbContextOptionsBuilder<ExportDbContext>().UseNpgsql(_postgres.ConnectionString).Options);

    private async Task<bool> HoldAsync(string owner, DateTimeOffset now)
    {
        await using var db = Open();
        return await ExportLease.TryHoldAsync(db, owner, now, Duration, Cancel);
    }

    [Fact]
    public async Task Instances_racing_for_the_lease_never_both_hold_it()
    {
        for (var round = 0; round < 6; round++)
        {
            // Round 0 races on the insert; later rounds race for a lease that has just expired under a third owner.
            var now = T0 + Duration * 2 * round;
            var results = await Task.WhenAll(HoldAsync("a", now), HoldAsync("b", now), HoldAsync("c", now));

            Assert.Equal(1, results.Count(held => held));
            var holder = new[] { "a", "b", "c" }[Array.IndexOf(results, true)];
            await using var db = Open();
            Assert.Equal(holder, (await db.Leases.AsNoTracking().SingleAsync(Cancel)).Owner);
            await db.Leases.ExecuteUpdateAsync(s => s.SetProperty(l => l.Owner, "gone"), Cancel);
        }
    }

    [Fact]
    public async Task The_holder_renews_another_waits_for_the_expiry_and_a_released_lease_is_free_at_once()
    {
        Assert.True(await HoldAsync("a", T0));
        Assert.False(await HoldAsync("b", T0.AddSeconds(10)));
        Assert.True(await HoldAsync("a", T0.AddSeconds(20))); // renewed until T0 + 50 s
        Assert.False(await HoldAsync("b", T0.AddSeconds(45)));
        Assert.True(await HoldAsync("b", T0.AddSeconds(51)));
        Assert.False(await HoldAsync("a", T0.AddSeconds(52))); // a lost it and must not forward any more

        await using (var db = Open())
        {
            Assert.Equal(1, await ExportLease.ReleaseAsync(db, "b", Cancel));
        }

        Assert.True(await HoldAsync("a", T0.AddSeconds(53)));
    }
}
