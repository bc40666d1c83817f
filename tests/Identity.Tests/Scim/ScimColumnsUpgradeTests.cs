using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Identity.Tests.Scim;

/// <summary>A database made by the previous build (Identity schema 7) gets the users' SCIM columns in place.</summary>
public sealed class ScimColumnsUpgradeTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-identity-upgrade-").FullName;

    [Fact]
    public async Task A_schema_7_database_gets_the_external_id_and_department_columns_keeping_its_users()
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

        // What the previous build left: schema 7, AspNetUsers without ExternalId and Department.
        await ExecuteAsync(database, "ALTER TABLE AspNetUsers DROP COLUMN ExternalId; ALTER TABLE AspNetUsers DROP COLUMN Department; UPDATE crm_schema_modules SET version = 7 WHERE module = 'identity';");
        var users = await ScalarAsync(database, "SELECT COUNT(*) FROM AspNetUsers");

        await using (var upgraded = await ServerProcess.StartAsync(environment, cancellationToken: TestContext.Current.CancellationToken))
        {
            Assert.Contains($"from schema version 7 to {IdentityModule.SchemaVersion}", upgraded.Output, StringComparison.Ordinal);
        }

        Assert.Equal(2L, await ScalarAsync(database, "SELECT COUNT(*) FROM pragma_table_info('AspNetUsers') WHERE name IN ('ExternalId', 'Department')"));
        Assert.True(users > 0);
        Assert.Equal(users, await ScalarAsync(database, "SELECT COUNT(*) FROM AspNetUsers WHERE ExternalId IS NULL AND Department IS NULL"));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

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
