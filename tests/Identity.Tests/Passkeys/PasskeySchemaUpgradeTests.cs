using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Identity.Tests.Passkeys;

/// <summary>A database made by the previous build (Identity schema 7) gains the passkey tables on start, keeping its users.</summary>
public sealed class PasskeySchemaUpgradeTests : IDisposable
{
    private static readonly string[] Tables = ["AspNetUserPasskeys", "identity_passkey_ceremonies", "identity_passkey_uses"];

    private readonly string _directory = Directory.CreateTempSubdirectory("crm-identity-passkeys-").FullName;

    [Fact]
    public async Task A_schema_7_database_gets_the_passkey_tables_keeping_its_users()
    {
        var database = Path.Combine(_directory, "security.db");
        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={database}",
        };
        await using (await ServerProcess.StartAsync(environment, cancellationToken: TestContext.Current.CancellationToken))
        {
        }

        // What the previous build left: schema 7, without the passkey tables.
        await ExecuteAsync(database, string.Concat(Tables.Select(t => $"DROP TABLE {t}; ")) + "UPDATE crm_schema_modules SET version = 7 WHERE module = 'identity';");
        var users = await ScalarAsync(database, "SELECT COUNT(*) FROM AspNetUsers");
        Assert.Equal(0L, await CountTablesAsync(database));

        await using (var upgraded = await ServerProcess.StartAsync(environment, cancellationToken: TestContext.Current.CancellationToken))
        {
            Assert.Contains($"from schema version 7 to {IdentityModule.SchemaVersion}", upgraded.Output, StringComparison.Ordinal);
        }

        Assert.Equal(3L, await CountTablesAsync(database));
        Assert.Equal((long)IdentityModule.SchemaVersion, await ScalarAsync(database, "SELECT version FROM crm_schema_modules WHERE module = 'identity'"));
        Assert.True(users > 0);
        Assert.Equal(users, await ScalarAsync(database, "SELECT COUNT(*) FROM AspNetUsers"));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    private static Task<long> CountTablesAsync(string database) =>
        ScalarAsync(database, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN (" + string.Join(", ", Tables.Select(t => $"'{t}'")) + ")");

    private static async Task ExecuteAsync(string database, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={database};Pooling=false");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }

    private static async Task<long> ScalarAsync(string database, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={database};Pooling=false");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken), System.Globalization.CultureInfo.InvariantCulture);
    }
}
