using Npgsql;

namespace CrmSecurity.Tests.Support;

/// <summary>
/// A throw-away database on the real PostgreSQL server that <c>scripts/test.sh</c> starts on 127.0.0.1.
/// Each instance creates its own database and drops it when disposed, so test classes never share state.
/// </summary>
public sealed class PostgresDatabase : IAsyncDisposable
{
    /// <summary>Connection string of the test server (no database); set by scripts/test.sh.</summary>
    public const string ServerVariable = "CRM_SECURITY_TEST_POSTGRES";

    private readonly string _server;

    private PostgresDatabase(string server, string name)
    {
        _server = server;
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(server) { Database = name, Pooling = true }.ToString();
    }

    public string Name { get; }

    public string ConnectionString { get; }

    public static string ServerConnectionString =>
        Environment.GetEnvironmentVariable(ServerVariable) is { Length: > 0 } server
            ? server
            : throw new InvalidOperationException(
                $"PostgreSQL tests need the environment variable {ServerVariable} (a connection string to a test server). " +
                "Run the suite with scripts/test.sh, which installs and starts a throw-away PostgreSQL on 127.0.0.1.");

    /// <summary>Creates an empty database. With <paramref name="create"/> false only the name is reserved, for code that creates it itself.</summary>
    public static async Task<PostgresDatabase> CreateAsync(bool create = true, CancellationToken cancellationToken = default)
    {
        var server = ServerConnectionString;
        var database = new PostgresDatabase(server, "t_" + Guid.NewGuid().ToString("N")[..20]);
        if (create)
        {
            await database.ExecuteOnServerAsync($"CREATE DATABASE \"{database.Name}\"", cancellationToken);
        }

        return database;
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await ExecuteOnServerAsync($"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)", CancellationToken.None);
    }

    private async Task ExecuteOnServerAsync(string sql, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_server) { Database = "postgres", Pooling = false }.ToString());
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
