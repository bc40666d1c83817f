using CrmSecurity.Server.Data;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrmSecurity.Server.Tests.Data;

public sealed class DatabaseSchemaTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-security-schema-").FullName;
    private PostgresDatabase? _postgres;

    public enum Store
    {
        Sqlite,
        PostgreSql,
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task Two_modules_create_their_own_tables_in_one_database(Store store)
    {
        var options = await OptionsForAsync(store);
        await using (var first = new FirstModuleContext(options))
        {
            await DatabaseSchema.EnsureAsync(first, FirstModuleContext.Schema, NullLogger.Instance, TestContext.Current.CancellationToken);
            first.Widgets.Add(new Widget { Name = "kept" });
            await first.SaveChangesAsync(TestContext.Current.CancellationToken);
        }

        await using var second = new SecondModuleContext(options);
        await DatabaseSchema.EnsureAsync(second, SecondModuleContext.Schema, NullLogger.Instance, TestContext.Current.CancellationToken);
        second.Gadgets.Add(new Gadget { Label = "also kept" });
        await second.SaveChangesAsync(TestContext.Current.CancellationToken);

        // Starting again is a no-op that keeps the data of both modules.
        await using var again = new FirstModuleContext(options);
        await DatabaseSchema.EnsureAsync(again, FirstModuleContext.Schema, NullLogger.Instance, TestContext.Current.CancellationToken);
        await DatabaseSchema.EnsureAsync(second, SecondModuleContext.Schema, NullLogger.Instance, TestContext.Current.CancellationToken);
        Assert.Equal("kept", (await again.Widgets.SingleAsync(TestContext.Current.CancellationToken)).Name);
        Assert.Equal("also kept", (await second.Gadgets.SingleAsync(TestContext.Current.CancellationToken)).Label);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task A_schema_version_this_build_does_not_know_stops_start_up_naming_the_module(Store store)
    {
        var options = await OptionsForAsync(store);
        await using var context = new FirstModuleContext(options);
        await DatabaseSchema.EnsureAsync(context, FirstModuleContext.Schema, NullLogger.Instance, TestContext.Current.CancellationToken);

        var newer = FirstModuleContext.Schema with { Version = 2 };
        var error = await Assert.ThrowsAsync<InvalidOperationException>(
            () => DatabaseSchema.EnsureAsync(context, newer, NullLogger.Instance, TestContext.Current.CancellationToken));

        Assert.Contains("schema version 1 of module 'first'", error.Message, StringComparison.Ordinal);
        Assert.Contains("needs version 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hosts_starting_together_on_PostgreSql_create_a_module_exactly_once()
    {
        // The database does not exist yet either: the first host creates it, the others must not trip over that.
        _postgres = await PostgresDatabase.CreateAsync(create: false, TestContext.Current.CancellationToken);
        var options = new DbContextOptionsBuilder().UseNpgsql(_postgres.ConnectionString).Options;

        var hosts = Enumerable.Range(0, 4).Select(async _ =>
        {
            await using var context = new FirstModuleContext(options);
            await DatabaseSchema.EnsureAsync(context, FirstModuleContext.Schema, NullLogger.Instance, TestContext.Current.CancellationToken);
        });
        await Task.WhenAll(hosts);

        await using var check = new FirstModuleContext(options);
        var rows = await check.Database.SqlQueryRaw<int>("SELECT count(*)::int AS \"Value\" FROM crm_schema_modules").SingleAsync(TestContext.Current.CancellationToken);
        Assert.Equal(1, rows);
        Assert.Equal(0, await check.Widgets.CountAsync(TestContext.Current.CancellationToken));
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

    private async Task<DbContextOptions> OptionsForAsync(Store store)
    {
        if (store == Store.Sqlite)
        {
            return new DbContextOptionsBuilder().UseSqlite($"Data Source={Path.Combine(_directory, "schema.db")}").Options;
        }

        _postgres = await PostgresDatabase.CreateAsync(cancellationToken: TestContext.Current.CancellationToken);
        return new DbContextOptionsBuilder().UseNpgsql(_postgres.ConnectionString).Options;
    }

    public sealed class Widget
    {
        public int Id { get; set; }

        public required string Name { get; set; }
    }

    public sealed class Gadget
    {
        public int Id { get; set; }

        public required string Label { get; set; }
    }

    private sealed class FirstModuleContext(DbContextOptions options) : DbContext(options)
    {
        public static readonly ModuleSchema Schema = new("first", typeof(FirstModuleContext), 1);

        public DbSet<Widget> Widgets => Set<Widget>();
    }

    private sealed class SecondModuleContext(DbContextOptions options) : DbContext(options)
    {
        public static readonly ModuleSchema Schema = new("second", typeof(SecondModuleContext), 1);

        public DbSet<Gadget> Gadgets => Set<Gadget>();
    }
}
