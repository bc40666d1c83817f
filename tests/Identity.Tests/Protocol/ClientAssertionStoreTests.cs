using System.Net;
using System.Text.Json;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>Two instances sharing one PostgreSQL database, each with the same key-only client.</summary>
public sealed class TwoInstancesWithKeyClient : IAsyncLifetime
{
    public const string Issuer = "http://login.crm.test/";
    private PostgresDatabase? _database;

    public ClientKeyPair Key { get; } = ClientKeyPair.Ec();

    public IdentityHost First { get; private set; } = null!;

    public IdentityHost Second { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await PostgresDatabase.CreateAsync(cancellationToken: TestContext.Current.CancellationToken);
        var settings = new Dictionary<string, string?>
        {
            ["Identity:Issuer"] = Issuer,
            ["Identity:Clients:0:ClientId"] = "batch",
            ["Identity:Clients:0:Jwks"] = Key.Jwks(),
            ["Identity:Clients:0:GrantTypes:0"] = "client_credentials",
            ["Identity:Clients:0:Scopes:0"] = "crm.api",
        };
        First = new IdentityHost { SharedPostgres = _database.ConnectionString, ExtraSettings = settings };
        await First.InitializeAsync();
        Second = new IdentityHost { SharedPostgres = _database.ConnectionString, ExtraSettings = settings };
        await Second.InitializeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await First.DisposeAsync();
        await Second.DisposeAsync();
        await _database!.DisposeAsync();
        Key.Dispose();
    }
}

/// <summary>The record of used client assertions is in the database: a replay is refused by every instance.</summary>
public sealed class ClientAssertionStoreTests(TwoInstancesWithKeyClient instances) : IClassFixture<TwoInstancesWithKeyClient>
{
    [Fact]
    public async Task An_assertion_used_on_one_instance_is_refused_on_the_other()
    {
        using var first = instances.First.CreateClient();
        using var second = instances.Second.CreateClient();
        // The issuer identifier as audience (draft-ietf-oauth-rfc7523bis): both instances are this issuer.
        var assertion = instances.Key.Sign(ClientKeyPair.Claims("batch", TwoInstancesWithKeyClient.Issuer));

        var (firstStatus, firstBody) = await TokenAsync(first, assertion);
        var (replayStatus, replayBody) = await TokenAsync(second, assertion);
        var (freshStatus, freshBody) = await TokenAsync(second, instances.Key.Sign(ClientKeyPair.Claims("batch", TwoInstancesWithKeyClient.Issuer)));

        Assert.True(firstStatus == HttpStatusCode.OK, $"{firstStatus} {firstBody}");
        Assert.True(replayStatus is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized, $"{replayStatus} {replayBody}");
        Assert.Equal("invalid_client", replayBody.GetProperty("error").GetString());
        Assert.True(freshStatus == HttpStatusCode.OK, $"{freshStatus} {freshBody}");
    }

    private static Task<(HttpStatusCode Status, JsonElement Body)> TokenAsync(HttpClient http, string assertion) =>
        PostFormAsync(http, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["scope"] = "crm.api",
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = assertion,
        });
}

/// <summary>A database made by the previous build (Identity schema 5) gets identity_client_assertions in place.</summary>
public sealed class ClientAssertionUpgradeTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-identity-upgrade-").FullName;

    [Fact]
    public async Task A_schema_5_database_gets_the_used_assertion_table_keeping_its_rows()
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

        // What the previous build left: schema 5, no identity_client_assertions.
        await ExecuteAsync(database, "DROP TABLE identity_client_assertions; UPDATE crm_schema_modules SET version = 5 WHERE module = 'identity';");
        var users = await ScalarAsync(database, "SELECT COUNT(*) FROM AspNetUsers");

        await using (var upgraded = await ServerProcess.StartAsync(environment, cancellationToken: TestContext.Current.CancellationToken))
        {
            Assert.Contains($"from schema version 5 to {IdentityModule.SchemaVersion}", upgraded.Output, StringComparison.Ordinal);
        }

        Assert.Equal(1L, await ScalarAsync(database, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'identity_client_assertions'"));
        Assert.Equal((long)IdentityModule.SchemaVersion, await ScalarAsync(database, "SELECT version FROM crm_schema_modules WHERE module = 'identity'"));
        Assert.True(users > 0);
        Assert.Equal(users, await ScalarAsync(database, "SELECT COUNT(*) FROM AspNetUsers"));
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
