using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Persistence;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Tests.Persistence;

public sealed class BaselineStoreTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-store-").FullName;
    private PostgresDatabase? _postgres;

    public enum Store
    {
        Sqlite,
        PostgreSql,
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task Baselines_saved_by_one_run_are_loaded_unchanged_and_a_later_run_continues_from_them(Store store)
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var options = await OptionsForAsync(store);
        var org = new Org().Peers("p", 20).User("alice");
        org.WorkDays("alice", 30);
        org.Add("alice", Org.Utc(Org.Weekday(30), 11), AccessAction.Export, "contact", 20_000);
        var split = Org.Utc(Org.Weekday(30), 0);

        // First run: the history only.
        var before = org.Score(out var first, before: split);
        first.Baselines.Watermark = first.LastEventTime;
        await using (var db = new AnalyzerDbContext(options))
        {
            await db.Database.EnsureCreatedAsync(cancellationToken);
            await BaselineStore.SaveAsync(db, first.Baselines, DateTimeOffset.UtcNow, cancellationToken);
        }

        // Second run: a new process would start from what the database holds.
        await using var again = new AnalyzerDbContext(options);
        var loaded = await BaselineStore.LoadAsync(again, first.Policy.HistoryDays, cancellationToken);
        var storedAlice = BaselineSerializer.Write(loaded.Users["alice"]);
        var storedPeers = BaselineSerializer.Write(loaded.Peers["Sales/Account Executive"]);
        var after = org.Score(out _, baselines: loaded, from: split);

        Assert.Empty(before.For("alice").Alerts());
        Assert.Equal(first.Baselines.Users.Count, loaded.Users.Count);
        Assert.Equal(first.Baselines.Peers.Count, loaded.Peers.Count);
        Assert.Equal(first.LastEventTime, loaded.Watermark);
        Assert.Equal(Org.Monday.DayNumber, loaded.OrganisationFirstDay); // the learning period does not start again
        Assert.Equal(BaselineSerializer.Write(first.Baselines.Users["alice"]), storedAlice);
        Assert.Equal(BaselineSerializer.Write(first.Baselines.Peers["Sales/Account Executive"]), storedPeers);
        var finding = Assert.Single(after.For("alice").Alerts());
        Assert.Equal(ReasonCodes.OwnHistory, finding.Reasons[0].Code);
        Assert.False(finding.Learning); // the 30 days of history came from the database
    }

    [Fact]
    public async Task Saving_again_replaces_the_stored_baselines_instead_of_adding_to_them()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var options = await OptionsForAsync(Store.Sqlite);
        var org = new Org().User("alice");
        org.WorkDays("alice", 5);
        org.Score(out var scorer);
        await using var db = new AnalyzerDbContext(options);
        await db.Database.EnsureCreatedAsync(cancellationToken);

        await BaselineStore.SaveAsync(db, scorer.Baselines, DateTimeOffset.UtcNow, cancellationToken);
        await BaselineStore.SaveAsync(db, scorer.Baselines, DateTimeOffset.UtcNow, cancellationToken);

        Assert.Equal(1, await db.UserBaselines.CountAsync(cancellationToken));
        Assert.Equal(5, (await db.UserBaselines.SingleAsync(cancellationToken)).ActiveDays);
    }

    [Fact]
    public async Task Baselines_of_a_build_that_did_not_keep_the_first_day_date_the_organisation_from_its_earliest_user()
    {
        // An upgrade: the previous build saved no organisation_first_day. An installation with weeks of history must not
        // fall silent for a new learning period after it, so its first day is its earliest user's first day.
        var cancellationToken = TestContext.Current.CancellationToken;
        var options = await OptionsForAsync(Store.Sqlite);
        var org = new Org().User("alice").User("bob");
        org.WorkDays("alice", 20);
        org.WorkDays("bob", 10, skipFirst: 5);
        org.Score(out var scorer);
        await using var db = new AnalyzerDbContext(options);
        await db.Database.EnsureCreatedAsync(cancellationToken);
        await BaselineStore.SaveAsync(db, scorer.Baselines, DateTimeOffset.UtcNow, cancellationToken);
        await db.State.Where(s => s.Key == "organisation_first_day").ExecuteDeleteAsync(cancellationToken);

        var loaded = await BaselineStore.LoadAsync(db, scorer.Policy.HistoryDays, cancellationToken);

        Assert.Equal(Org.Monday.DayNumber, scorer.Baselines.OrganisationFirstDay);
        Assert.Equal(Org.Monday.DayNumber, loaded.OrganisationFirstDay);
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task<DbContextOptions<AnalyzerDbContext>> OptionsForAsync(Store store)
    {
        if (store == Store.Sqlite)
        {
            return new DbContextOptionsBuilder<AnalyzerDbContext>().UseSqlite($"Data Source={Path.Combine(_directory, "baselines.db")}").Options;
        }

        _postgres = await PostgresDatabase.CreateAsync(cancellationToken: TestContext.Current.CancellationToken);
        return new DbContextOptionsBuilder<AnalyzerDbContext>().UseNpgsql(_postgres.ConnectionString).Options;
    }
}
