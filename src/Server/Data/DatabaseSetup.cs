using System.Data.Common;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CrmSecurity.Server.Data;

/// <summary>
/// The one place that turns <see cref="DatabaseOptions"/> into an EF Core provider. Modules take an
/// <c>Action&lt;IServiceProvider, DbContextOptionsBuilder&gt;</c> and the host passes <see cref="Configure"/>,
/// so no module knows which database it runs on.
/// </summary>
internal static class DatabaseSetup
{
    public static void Configure(IServiceProvider services, DbContextOptionsBuilder builder)
    {
        var options = services.GetRequiredService<IOptions<DatabaseOptions>>().Value;
        Use(options.ParsedProvider, ResolveConnectionString(options, Environment.CurrentDirectory), builder);
    }

    public static void Use(DatabaseProvider provider, string connectionString, DbContextOptionsBuilder builder)
    {
        switch (provider)
        {
            case DatabaseProvider.Sqlite:
                builder.UseSqlite(connectionString);
                break;
            case DatabaseProvider.PostgreSql:
                builder.UseNpgsql(connectionString);
                break;
            case DatabaseProvider.SqlServer:
                builder.UseSqlServer(connectionString);
                break;
        }
    }

    /// <summary>Puts a context on an open connection of the host's database (to share another context's transaction).</summary>
    public static void Use(DatabaseProvider provider, DbConnection connection, DbContextOptionsBuilder builder)
    {
        switch (provider)
        {
            case DatabaseProvider.Sqlite:
                builder.UseSqlite(connection);
                break;
            case DatabaseProvider.PostgreSql:
                builder.UseNpgsql(connection);
                break;
            case DatabaseProvider.SqlServer:
                builder.UseSqlServer(connection);
                break;
        }
    }

    public static string ResolveConnectionString(DatabaseOptions options, string workingDirectory)
    {
        if (options.ParsedProvider != DatabaseProvider.Sqlite)
        {
            return options.ConnectionString!;
        }

        return ResolveSqlite(string.IsNullOrWhiteSpace(options.ConnectionString) ? "Data Source=data/security.db" : options.ConnectionString, workingDirectory);
    }

    public static bool IsInMemorySqlite(string connectionString)
    {
        var sqlite = new SqliteConnectionStringBuilder(connectionString);
        return sqlite.DataSource is "" or ":memory:" || sqlite.Mode == SqliteOpenMode.Memory;
    }

    /// <summary>Makes a SQLite file path absolute (relative to <paramref name="workingDirectory"/>) and creates its directory.</summary>
    public static string ResolveSqlite(string connectionString, string workingDirectory)
    {
        var sqlite = new SqliteConnectionStringBuilder(connectionString);
        if (!IsInMemorySqlite(connectionString))
        {
            // Relative paths are relative to the working directory, like every other path the user gives.
            var path = Path.GetFullPath(sqlite.DataSource, workingDirectory);
            SqliteFiles.CreateDirectory(Path.GetDirectoryName(path)!);
            sqlite.DataSource = path;
        }

        return sqlite.ToString();
    }

    public static string? ConnectionStringError(DatabaseProvider provider, string connectionString)
    {
        try
        {
            DbConnectionStringBuilder parsed = provider switch
            {
                DatabaseProvider.Sqlite => new SqliteConnectionStringBuilder(connectionString),
                DatabaseProvider.PostgreSql => new NpgsqlConnectionStringBuilder(connectionString),
                DatabaseProvider.SqlServer => new SqlConnectionStringBuilder(connectionString),
                _ => throw new ArgumentOutOfRangeException(nameof(provider)),
            };
            return parsed.Count == 0 ? "it is empty" : null;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        {
            return e.Message;
        }
    }
}
