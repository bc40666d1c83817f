using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime.MembershipService;

namespace CrmSecurity.AuditAnalyzer.Service.Orleans;

/// <summary>
/// Cluster membership in the service's own database, so a deployment needs no new server: on PostgreSQL the ADO.NET
/// clustering provider over tables this class creates at start (idempotent DDL below, under an advisory lock so
/// instances starting together do not race); on SQLite (one process by design) a table in memory, as Orleans'
/// localhost clustering would. The choice follows the database the host gave the module, which it does not otherwise know.
/// </summary>
internal sealed class DatabaseMembershipTable(
    IServiceProvider services,
    IServiceScopeFactory scopes,
    IOptions<ClusterOptions> cluster,
    ILoggerFactory loggers) : IMembershipTable
{
    private IMembershipTable? _inner;

    private IMembershipTable Inner => _inner ?? throw new InvalidOperationException("The membership table is not initialised yet.");

    public async Task InitializeMembershipTable(bool tryInitTableVersion)
    {
        string provider;
        string? connectionString;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
            provider = db.Database.ProviderName ?? "";
            connectionString = db.Database.GetConnectionString();
            if (provider.Contains("Npgsql", StringComparison.Ordinal))
            {
                await OrleansTables.CreateAsync(db, CancellationToken.None);
            }
        }

        if (provider.Contains("Npgsql", StringComparison.Ordinal))
        {
            var options = Options.Create(new AdoNetClusteringSiloOptions { Invariant = "Npgsql", ConnectionString = connectionString });
            _inner = new AdoNetClusteringTable(services, cluster, options, loggers.CreateLogger<AdoNetClusteringTable>());
        }
        else if (provider.Contains("Sqlite", StringComparison.Ordinal))
        {
            _inner = new SingleProcessMembershipTable();
        }
        else
        {
            // A configuration error (the host reports it as one, exit 78): only this database's provider tells.
            throw new OptionsValidationException(LiveOptions.Section, typeof(LiveOptions),
                [$"{LiveOptions.Section}:Runtime {LiveOptions.OrleansRuntime} runs on SQLite (one process) or PostgreSQL (the membership tables in the same database); this database is {provider}. Use {LiveOptions.LeasesRuntime}."]);
        }

        await _inner.InitializeMembershipTableAsync(tryInitTableVersion, CancellationToken.None);
    }

    public Task DeleteMembershipTableEntries(string clusterId) => Inner.DeleteMembershipTableEntriesAsync(clusterId, CancellationToken.None);

    public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) => Inner.CleanupDefunctSiloEntriesAsync(beforeDate, CancellationToken.None);

    public Task<MembershipTableData> ReadRow(SiloAddress key) => Inner.ReadRowAsync(key, CancellationToken.None);

    public Task<MembershipTableData> ReadAll() => Inner.ReadAllAsync(CancellationToken.None);

    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => Inner.InsertRowAsync(entry, tableVersion, CancellationToken.None);

    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) => Inner.UpdateRowAsync(entry, etag, tableVersion, CancellationToken.None);

    public Task UpdateIAmAlive(MembershipEntry entry) => Inner.UpdateIAmAliveAsync(entry, CancellationToken.None);
}

/// <summary>
/// The tables and statements Orleans' ADO.NET clustering reads (it looks its statements up by key in <c>OrleansQuery</c>),
/// written for this service: plain statements instead of stored functions, each table-version check and bump in one
/// statement. Orleans passes the parameters named below; each is cast so its wire type does not matter.
/// </summary>
internal static class OrleansTables
{
    private const long LockKey = 0x4352_4D4F_524C; // "CRMORL": serialises concurrent start-ups

    private const string Tables = """
        CREATE TABLE IF NOT EXISTS orleansquery (
            querykey varchar(64) NOT NULL PRIMARY KEY,
            querytext varchar(8000) NOT NULL);
        CREATE TABLE IF NOT EXISTS orleansmembershipversiontable (
            deploymentid varchar(150) NOT NULL PRIMARY KEY,
            timestamp timestamptz(3) NOT NULL DEFAULT now(),
            version integer NOT NULL DEFAULT 0);
        CREATE TABLE IF NOT EXISTS orleansmembershiptable (
            deploymentid varchar(150) NOT NULL REFERENCES orleansmembershipversiontable (deploymentid),
            address varchar(45) NOT NULL,
            port integer NOT NULL,
            generation integer NOT NULL,
            siloname varchar(150) NOT NULL,
            hostname varchar(150) NOT NULL,
            status integer NOT NULL,
            proxyport integer NULL,
            suspecttimes varchar(8000) NULL,
            starttime timestamptz(3) NOT NULL,
            iamalivetime timestamptz(3) NOT NULL,
            PRIMARY KEY (deploymentid, address, port, generation));
        """;

    private const string Row = """
        SELECT v.deploymentid, m.address, m.port, m.generation, m.siloname, m.hostname, m.status, m.proxyport,
               m.suspecttimes, m.starttime, m.iamalivetime, v.version
        FROM orleansmembershipversiontable v
        LEFT JOIN orleansmembershiptable m ON m.deploymentid = v.deploymentid
        """;

    /// <summary>The statements by the key Orleans asks for.</summary>
    internal static readonly IReadOnlyDictionary<string, string> Queries = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["MembershipReadAllKey"] = Row + " WHERE v.deploymentid = @DeploymentId::varchar",
        ["MembershipReadRowKey"] = Row + """
             AND m.address = @Address::varchar AND m.port = @Port::integer AND m.generation = @Generation::integer
            WHERE v.deploymentid = @DeploymentId::varchar
            """,
        ["InsertMembershipVersionKey"] = """
            WITH inserted AS (
                INSERT INTO orleansmembershipversiontable (deploymentid) VALUES (@DeploymentId::varchar)
                ON CONFLICT (deploymentid) DO NOTHING RETURNING 1)
            SELECT count(*)::integer FROM inserted
            """,
        // The version row is bumped only if it still has the version the silo read (optimistic concurrency); the row
        // is inserted only together with that bump.
        ["InsertMembershipKey"] = """
            WITH bumped AS (
                UPDATE orleansmembershipversiontable SET version = version + 1, timestamp = now()
                WHERE deploymentid = @DeploymentId::varchar AND version = @Version::integer
                RETURNING deploymentid),
            inserted AS (
                INSERT INTO orleansmembershiptable (deploymentid, address, port, generation, siloname, hostname, status, proxyport, starttime, iamalivetime)
                SELECT deploymentid, @Address::varchar, @Port::integer, @Generation::integer, @SiloName::varchar, @HostName::varchar,
                       @Status::integer, @ProxyPort::integer, @StartTime::timestamptz, @IAmAliveTime::timestamptz
                FROM bumped
                ON CONFLICT (deploymentid, address, port, generation) DO NOTHING
                RETURNING 1)
            SELECT count(*)::integer FROM inserted
            """,
        ["UpdateMembershipKey"] = """
            WITH bumped AS (
                UPDATE orleansmembershipversiontable SET version = version + 1, timestamp = now()
                WHERE deploymentid = @DeploymentId::varchar AND version = @Version::integer
                RETURNING deploymentid),
            updated AS (
                UPDATE orleansmembershiptable m
                SET status = @Status::integer, suspecttimes = @SuspectTimes::varchar, iamalivetime = @IAmAliveTime::timestamptz
                FROM bumped
                WHERE m.deploymentid = bumped.deploymentid AND m.address = @Address::varchar AND m.port = @Port::integer
                  AND m.generation = @Generation::integer
                RETURNING 1)
            SELECT count(*)::integer FROM updated
            """,
        ["UpdateIAmAlivetimeKey"] = """
            UPDATE orleansmembershiptable SET iamalivetime = @IAmAliveTime::timestamptz
            WHERE deploymentid = @DeploymentId::varchar AND address = @Address::varchar AND port = @Port::integer
              AND generation = @Generation::integer
            """,
        ["DeleteMembershipTableEntriesKey"] = """
            DELETE FROM orleansmembershiptable WHERE deploymentid = @DeploymentId::varchar;
            DELETE FROM orleansmembershipversiontable WHERE deploymentid = @DeploymentId::varchar
            """,
        // Only silos declared dead (status 6) and silent since the given time.
        ["CleanupDefunctSiloEntriesKey"] = """
            DELETE FROM orleansmembershiptable
            WHERE deploymentid = @DeploymentId::varchar AND iamalivetime < @IAmAliveTime::timestamptz AND status = 6
            """,
        ["GatewaysQueryKey"] = """
            SELECT address, proxyport, generation FROM orleansmembershiptable
            WHERE deploymentid = @DeploymentId::varchar AND status = @Status::integer AND proxyport > 0
            """,
    };

    /// <summary>Creates the tables if missing and writes the statements (replacing older texts), in one transaction.</summary>
    public static async Task CreateAsync(LiveDbContext db, CancellationToken cancellationToken)
    {
        var strategy = db.Database.CreateExecutionStrategy();
        await strategy.ExecuteAsync(async () =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            var connection = db.Database.GetDbConnection();
            await ExecuteAsync(connection, $"SELECT pg_advisory_xact_lock({LockKey})", cancellationToken);
            await ExecuteAsync(connection, Tables, cancellationToken);
            foreach (var (key, text) in Queries)
            {
                await using var command = connection.CreateCommand();
                command.CommandText = "INSERT INTO orleansquery (querykey, querytext) VALUES (@key, @text) ON CONFLICT (querykey) DO UPDATE SET querytext = EXCLUDED.querytext";
                Add(command, "key", key);
                Add(command, "text", text);
                await command.ExecuteNonQueryAsync(cancellationToken);
            }

            await transaction.CommitAsync(cancellationToken);
        });
    }

    private static async Task ExecuteAsync(DbConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static void Add(DbCommand command, string name, string value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }
}
