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
    public async Task A_database_made_by_a_newer_build_stops_start_up_naming_the_module(Store store)
    {
        var options = await OptionsForAsync(store);
        await using var context = new FirstModuleContext(options);
        await DatabaseSchema.EnsureAsync(context, FirstModuleContext.Schema with { Version = 2 }, NullLogger.Instance, TestContext.Current.CancellationToken);

        var error = await Assert.ThrowsAsync<CrmSecurity.Server.Hosting.ConfigurationException>(
            () => DatabaseSchema.EnsureAsync(context, FirstModuleContext.Schema, NullLogger.Instance, TestContext.Current.CancellationToken));

        Assert.Contains("schema version 2 of module 'first'", error.Message, StringComparison.Ordinal);
        Assert.Contains("newer than this build's version 1", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task A_database_made_by_the_previous_build_is_upgraded_in_place_keeping_its_rows(Store store)
    {
        var options = await OptionsForAsync(store);
        await using (var previous = new FirstModuleContext(options))
        {
            await DatabaseSchema.EnsureAsync(previous, FirstModuleContext.Schema, NullLogger.Instance, TestContext.Current.CancellationToken);
            previous.Widgets.Add(new Widget { Name = "made by the previous build" });
            await previous.SaveChangesAsync(TestContext.Current.CancellationToken);
        }

        // The next build: one more table, two more columns (one of them NOT NULL), one more index.
        await using (var next = new FirstModuleNextContext(options))
        {
            await DatabaseSchema.EnsureAsync(next, FirstModuleNextContext.Schema, NullLogger.Instance, TestContext.Current.CancellationToken);
            var kept = await next.Widgets.SingleAsync(TestContext.Current.CancellationToken);
            Assert.Equal(("made by the previous build", null, 0), (kept.Name, kept.Colour, kept.Weight));

            kept.Colour = "blue";
            next.Sprockets.Add(new Sprocket { Teeth = 12 });
            await next.SaveChangesAsync(TestContext.Current.CancellationToken);

            // Starting the next build again changes nothing.
            await DatabaseSchema.EnsureAsync(next, FirstModuleNextContext.Schema, NullLogger.Instance, TestContext.Current.CancellationToken);
        }

        await using var check = new FirstModuleNextContext(options);
        Assert.Equal("blue", (await check.Widgets.SingleAsync(TestContext.Current.CancellationToken)).Colour);
        Assert.Equal(12, (await check.Sprockets.SingleAsync(TestContext.Current.CancellationToken)).Teeth);
        var version = await check.Database.SqlQueryRaw<int>("SELECT version AS \"Value\" FROM crm_schema_modules WHERE module = 'first'").SingleAsync(TestContext.Current.CancellationToken);
        Assert.Equal(2, version);
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

    public sealed class NextWidget
    {
        public int Id { get; set; }

        public required string Name { get; set; }

        public string? Colour { get; set; }

        public int Weight { get; set; }
    }

    public sealed class Sprocket
    {
        public int Id { get; set; }

        public int Teeth { get; set; }
    }

    /// <summary>The same module as <see cref="FirstModuleContext"/> one schema version later.</summary>
    private sealed class FirstModuleNextContext(DbContextOptions options) : DbContext(options)
    {
        public static readonly ModuleSchema Schema = new("first", typeof(FirstModuleNextContext), 2);

        public DbSet<NextWidget> Widgets => Set<NextWidget>();

        public DbSet<Sprocket> Sprockets => Set<Sprocket>();

        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.Entity<NextWidget>(e =>
            {
                e.ToTable("Widgets");
                e.HasIndex(w => w.Name);
            });
        }
    }

    private sealed class SecondModuleContext(DbContextOptions options) : DbContext(options)
    {
        public static readonly ModuleSchema Schema = new("second", typeof(SecondModuleContext), 1);

        public DbSet<Gadget> Gadgets => Set<Gadget>();
    }
}
