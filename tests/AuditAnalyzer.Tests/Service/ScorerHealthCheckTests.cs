using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>Readiness of live scoring, judged from the events and leases in a real (SQLite) database.</summary>
public sealed class ScorerHealthCheckTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);
    private readonly SqliteConnection _connection = new("Data Source=:memory:");
    private readonly ServiceProvider _services;
    private readonly FakeTimeProvider _time = new(Now);

    public ScorerHealthCheckTests()
    {
        _connection.Open();
        var services = new ServiceCollection().AddDbContext<LiveDbContext>(o => o.UseSqlite(_connection));
        services.AddOptions<LiveOptions>();
        services.AddScoped<CrmSecurity.AuditAnalyzer.Service.EventLog.IEventLog, CrmSecurity.AuditAnalyzer.Service.EventLog.DatabaseEventLog>();
        _services = services.BuildServiceProvider();
        using var scope = _services.CreateScope();
        scope.ServiceProvider.GetRequiredService<LiveDbContext>().Database.EnsureCreated();
    }

    [Fact]
    public async Task An_empty_table_is_ready()
    {
        Assert.Equal(HealthStatus.Healthy, await CheckAsync());
    }

    [Fact]
    public async Task Events_waiting_longer_than_two_leases_without_a_live_lease_mean_no_scorer_is_polling()
    {
        await AddEventAsync(received: Now - TimeSpan.FromMinutes(5));

        Assert.Equal(HealthStatus.Unhealthy, await CheckAsync());
    }

    [Fact]
    public async Task A_live_lease_means_a_scorer_is_working_through_a_backlog()
    {
        await AddEventAsync(received: Now - TimeSpan.FromMinutes(5));
        await using (var scope = _services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
            db.Leases.Add(new PartitionLeaseRow { Partition = 0, Owner = "other", ExpiresTicks = (Now + TimeSpan.FromSeconds(20)).UtcTicks });
            await db.SaveChangesAsync(TestContext.Current.CancellationToken);
        }

        Assert.Equal(HealthStatus.Healthy, await CheckAsync());
    }

    [Fact]
    public async Task A_waiting_event_in_any_partition_counts_and_a_scored_one_does_not()
    {
        // Partition 40 of 50: beyond the first statement's probes. An old scored event before it in the same partition.
        await AddEventAsync(received: Now - TimeSpan.FromMinutes(9), partition: 40, key: "c:0", scored: true);
        Assert.Equal(HealthStatus.Healthy, await CheckAsync(new LiveOptions { Partitions = 50 }));

        await AddEventAsync(received: Now - TimeSpan.FromMinutes(5), partition: 40);

        Assert.Equal(HealthStatus.Unhealthy, await CheckAsync(new LiveOptions { Partitions = 50 }));
    }

    [Fact]
    public async Task Events_received_just_now_do_not_count_as_waiting()
    {
        await AddEventAsync(received: Now - TimeSpan.FromSeconds(5));

        Assert.Equal(HealthStatus.Healthy, await CheckAsync());
    }

    [Fact]
    public async Task An_instance_with_scoring_off_does_not_judge_the_others()
    {
        await AddEventAsync(received: Now - TimeSpan.FromMinutes(5));

        Assert.Equal(HealthStatus.Healthy, await CheckAsync(new LiveOptions { Scoring = false }));
    }

    public void Dispose()
    {
        _services.Dispose();
        _connection.Dispose();
    }

    private async Task<HealthStatus> CheckAsync(LiveOptions? options = null)
    {
        var check = new ScorerHealthCheck(_services.GetRequiredService<IServiceScopeFactory>(), Options.Create(options ?? new LiveOptions()), _time);
        return (await check.CheckHealthAsync(new HealthCheckContext(), TestContext.Current.CancellationToken)).Status;
    }

    private async Task AddEventAsync(DateTimeOffset received, int partition = 0, string key = "c:1", bool scored = false)
    {
        await using var scope = _services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        db.Events.Add(new StoredEventRow { EventKey = key, ClientId = "c", UserId = "u", Line = "{}", ReceivedTicks = received.UtcTicks, Partition = partition, Scored = scored });
        await db.SaveChangesAsync(TestContext.Current.CancellationToken);
    }
}
