using CrmSecurity.Server.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

namespace CrmSecurity.Server.Data;

/// <summary>A module's tables, created together, at a schema version the module declares.</summary>
internal sealed record ModuleSchema(string Module, Type ContextType, int Version)
{
    /// <summary>What a module's options call for each of its table sets: it is registered here, created at start.</summary>
    public static Action<string, Type, int> Registrar(IServiceCollection services) =>
        (module, context, version) => services.AddSingleton(new ModuleSchema(module, context, version));
}

/// <summary>
/// Creates each module's tables in the shared database on first start and refuses to run against a
/// schema version it does not know. Several modules (and several host instances) share one database, so
/// EF Core's EnsureCreated (which gives up as soon as any table exists) is not enough: each module is
/// recorded in <c>crm_schema_modules</c>, and creation runs under a database lock so two hosts starting
/// at once do not both create the same tables.
/// </summary>
/// <remarks>
/// A database made by an earlier build is upgraded in place, additively (<see cref="SchemaUpgrade"/>): missing tables,
/// columns and indexes are added and the new version recorded, under the same lock. A database made by a newer build
/// stops start-up with the module named.
/// </remarks>
internal static partial class DatabaseSchema
{
    private const string Table = "crm_schema_modules";

    public static async Task EnsureAsync(DbContext context, ModuleSchema schema, ILogger logger, CancellationToken cancellationToken)
    {
        var database = context.Database;
        var creator = database.GetService<IRelationalDatabaseCreator>();
        if (!await creator.ExistsAsync(cancellationToken))
        {
            try
            {
                await creator.CreateAsync(cancellationToken);
            }
            catch (Exception) when (creator.Exists())
            {
                // Another instance created the database between our check and our create.
            }
        }

        await using var transaction = await database.BeginTransactionAsync(cancellationToken);
        await LockAsync(database, cancellationToken);

        // Under the lock: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a concurrent twin
        // (both pass the check, one fails on the pg_type unique index, SQLSTATE 23505).
        await database.ExecuteSqlRawAsync(CreateMarkerTableSql(database.ProviderName), cancellationToken);

        var recorded = await database
            .SqlQueryRaw<int>($"SELECT version AS \"Value\" FROM {Table} WHERE module = {{0}}", schema.Module)
            .ToListAsync(cancellationToken);

        if (recorded.Count == 0)
        {
            await creator.CreateTablesAsync(cancellationToken);
            await database.ExecuteSqlRawAsync(
                $"INSERT INTO {Table} (module, version, created_at) VALUES ({{0}}, {{1}}, {{2}})",
                [schema.Module, schema.Version, DateTimeOffset.UtcNow.ToString("O")],
                cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            LogCreated(logger, schema.Module, schema.Version);
            return;
        }

        if (recorded[0] > schema.Version)
        {
            await transaction.RollbackAsync(cancellationToken);
            throw new ConfigurationException(
                $"The database holds schema version {recorded[0]} of module '{schema.Module}', newer than this build's version {schema.Version}: " +
                "it was made by a newer build. Run that build (or a newer one); going back would lose what the newer schema keeps.");
        }

        if (recorded[0] < schema.Version)
        {
            // Under the same lock as creation: two instances of the new build starting at once upgrade once.
            var added = await SchemaUpgrade.AddMissingAsync(context, cancellationToken);
            await database.ExecuteSqlRawAsync(
                $"UPDATE {Table} SET version = {{0}} WHERE module = {{1}}", [schema.Version, schema.Module], cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            LogUpgraded(logger, schema.Module, recorded[0], schema.Version, added.Tables, added.Columns, added.Indexes);
            return;
        }

        await transaction.CommitAsync(cancellationToken);
    }

    private static string CreateMarkerTableSql(string? provider) => IsSqlServer(provider)
        ? $"IF OBJECT_ID(N'{Table}', N'U') IS NULL CREATE TABLE {Table} (module nvarchar(100) NOT NULL PRIMARY KEY, version int NOT NULL, created_at nvarchar(40) NOT NULL)"
        : $"CREATE TABLE IF NOT EXISTS {Table} (module varchar(100) NOT NULL PRIMARY KEY, version integer NOT NULL, created_at varchar(40) NOT NULL)";

    private static Task LockAsync(DatabaseFacade database, CancellationToken cancellationToken)
    {
        // SQLite: Microsoft.Data.Sqlite begins transactions IMMEDIATE, which already takes the write lock.
        if (IsPostgreSql(database.ProviderName))
        {
            // Transaction-scoped advisory lock: released at commit or rollback, even if this process dies.
            return database.ExecuteSqlRawAsync("SELECT pg_advisory_xact_lock(726354101)", cancellationToken);
        }

        if (IsSqlServer(database.ProviderName))
        {
            return database.ExecuteSqlRawAsync(
                "EXEC sp_getapplock @Resource = N'crm_schema_modules', @LockMode = N'Exclusive', @LockOwner = N'Transaction'",
                cancellationToken);
        }

        return Task.CompletedTask;
    }

    private static bool IsPostgreSql(string? provider) => provider == "Npgsql.EntityFrameworkCore.PostgreSQL";

    private static bool IsSqlServer(string? provider) => provider == "Microsoft.EntityFrameworkCore.SqlServer";

    [LoggerMessage(EventId = 1010, Level = LogLevel.Information, Message = "Created the tables of module {Module} at schema version {Version}")]
    private static partial void LogCreated(ILogger logger, string module, int version);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Upgraded the tables of module {Module} from schema version {From} to {To}: {Tables} tables, {Columns} columns and {Indexes} indexes added")]
    private static partial void LogUpgraded(ILogger logger, string module, int from, int to, int tables, int columns, int indexes);
}

/// <summary>Runs <see cref="DatabaseSchema.EnsureAsync"/> for every registered module before anything else starts.</summary>
internal sealed partial class DatabaseSchemaInitializer(
    IServiceScopeFactory scopes,
    IEnumerable<ModuleSchema> schemas,
    Microsoft.Extensions.Options.IOptions<DatabaseOptions> database,
    ILogger<DatabaseSchemaInitializer> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (database.Value.ParsedProvider == DatabaseProvider.Sqlite)
        {
            var connectionString = DatabaseSetup.ResolveConnectionString(database.Value, Environment.CurrentDirectory);
            SqliteFiles.Secure(connectionString);
            var mode = await SqliteFiles.UseWriteAheadLogAsync(connectionString, cancellationToken);
            if (mode is not ("wal" or "memory"))
            {
                LogNoWriteAheadLog(logger, mode);
            }
        }

        foreach (var schema in schemas)
        {
            await using var scope = scopes.CreateAsyncScope();
            var context = (DbContext)scope.ServiceProvider.GetRequiredService(schema.ContextType);
            await DatabaseSchema.EnsureAsync(context, schema, logger, cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 1012, Level = LogLevel.Warning, Message = "SQLite kept the database in journal mode {Mode} instead of WAL (a file system without shared memory?); concurrent requests may fail with 'database is locked'")]
    private static partial void LogNoWriteAheadLog(ILogger logger, string mode);
}
