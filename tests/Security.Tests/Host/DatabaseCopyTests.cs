using System.Net;
using System.Security.Cryptography;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Host;

/// <summary>
/// Red-team finding 3: a copy of the database minted admin tokens. The Data Protection key ring that wraps the token
/// signing keys sat in clear beside them, so a second instance started from a copy of <c>security.db</c> alone signed
/// tokens the real instance accepted. The attacker here holds a copy of the database file (a backup, a stolen disk),
/// and may change it, but not the installation's master key.
/// </summary>
public sealed class DatabaseCopyTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_key_ring_in_the_database_holds_no_key_in_clear()
    {
        var rows = await host.QueryAsync("SELECT Xml FROM DataProtectionKeys");

        Assert.NotEmpty(rows);
        Assert.All(rows, row =>
        {
            var xml = (string)row["Xml"]!;
            Assert.Contains("kekWrappedSecret", xml, StringComparison.Ordinal);
            Assert.DoesNotContain("in an unencrypted form", xml, StringComparison.Ordinal);
            Assert.DoesNotContain("<masterKey", xml, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task A_host_started_from_a_copy_of_the_database_with_another_master_key_refuses_to_start_naming_the_key()
    {
        var copy = await CopyDatabaseAsync();
        try
        {
            await using var rogue = await TryStartAsync(copy);
            if (rogue.Server is not null)
            {
                // The attack of the finding: the copy runs and signs with the real installation's keys.
                var accepted = await RealHostAcceptsAsync(await MintAdminTokenAsync(rogue.Server));
                Assert.Fail($"A copy of the database with another master key started, and the real host {(accepted ? "ACCEPTED" : "refused")} the admin token it minted.");
            }

            Assert.Equal(78, rogue.ExitCode);
            Assert.Contains("Crypto:MasterKey", rogue.Output, StringComparison.Ordinal);
        }
        finally
        {
            await TestDirectories.DeleteAsync(copy.Directory);
        }
    }

    [Fact]
    public async Task A_copy_whose_key_ring_was_removed_makes_keys_of_its_own_whose_admin_tokens_the_real_host_refuses()
    {
        // The attacker removes what their key cannot open, so the copy starts with keys of its own.
        var copy = await CopyDatabaseAsync();
        try
        {
            await ExecuteAsync(copy.Database, "DELETE FROM DataProtectionKeys; DELETE FROM identity_signing_keys;");
            await using var rogue = await TryStartAsync(copy);
            if (rogue.Server is null)
            {
                // Refusing to start over other secrets the copy cannot open is as good: it mints nothing.
                Assert.Equal(78, rogue.ExitCode);
                Assert.Contains("Crypto:MasterKey", rogue.Output, StringComparison.Ordinal);
                return;
            }

            var minted = await MintAdminTokenAsync(rogue.Server);
            Assert.False(await RealHostAcceptsAsync(minted));

            using var check = host.CreateClient();
            var (introspected, answer) = await OAuthFlows.IntrospectAsync(check, minted, "demo-crm", Personas.ClientSecrets["demo-crm"]);
            Assert.Equal(HttpStatusCode.OK, introspected);
            Assert.False(answer.GetProperty("active").GetBoolean());
        }
        finally
        {
            await TestDirectories.DeleteAsync(copy.Directory);
        }
    }

    [Fact]
    public async Task The_real_host_still_accepts_its_own_admin_tokens()
    {
        // The control for the attacks above: the same request with a token of the real host succeeds.
        var token = await Personas.ClientTokenAsync(host, "demo-secops", "identity.admin");
        using var real = host.CreateClient(token);
        using var admin = await real.GetAsync(new Uri("admin/api/users", UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
    }

    private static async Task<string> MintAdminTokenAsync(ServerProcess rogue)
    {
        using var http = new HttpClient { BaseAddress = rogue.BaseAddress };
        var (status, body) = await OAuthFlows.PostFormAsync(http, "connect/token",
            new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "identity.admin" },
            ("demo-secops", Personas.ClientSecrets["demo-secops"]));
        Assert.True(status == HttpStatusCode.OK, $"the rogue copy should issue a token of its own here: {status} {body}");
        return body.GetProperty("access_token").GetString()!;
    }

    private async Task<bool> RealHostAcceptsAsync(string token)
    {
        using var real = host.CreateClient(token);
        using var admin = await real.GetAsync(new Uri("admin/api/users", UriKind.Relative), Cancel);
        return admin.StatusCode == HttpStatusCode.OK;
    }

    private sealed record DatabaseCopy(string Directory, string Database, string MasterKey);

    /// <summary>A consistent copy of the live database (SQLite's VACUUM INTO), and the attacker's own master key.</summary>
    private async Task<DatabaseCopy> CopyDatabaseAsync()
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("crm-security-copy-").FullName;
        var database = Path.Combine(directory, "security.db");
        await host.ExecuteAsync("VACUUM INTO @path", ("@path", database));
        var masterKey = Path.Combine(directory, "attacker.key");
        await File.WriteAllTextAsync(masterKey, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), Cancel);
        return new DatabaseCopy(directory, database, masterKey);
    }

    private static async Task ExecuteAsync(string database, string sql)
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={database};Pooling=false");
        await connection.OpenAsync(Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(Cancel);
    }

    /// <summary>The rogue's settings: the attacker's own master key, and the real installation's public issuer (public knowledge).</summary>
    private Dictionary<string, string?> Environment(DatabaseCopy copy) => new()
    {
        ["Identity__Issuer"] = host.BaseAddress.AbsoluteUri,
        ["Database__Provider"] = "Sqlite",
        ["Database__ConnectionString"] = $"Data Source={copy.Database}",
        ["Crypto__MasterKey__Source"] = "File",
        ["Crypto__MasterKey__File"] = copy.MasterKey,
        ["Crypto__KeyringPath"] = Path.Combine(copy.Directory, "keyring.json"),
        ["Identity__AllowHttp"] = "true",
        ["Identity__MailPickupDirectory"] = Path.Combine(copy.Directory, "mail"),
        ["AuditAnalyzer__DemoHistory__Enabled"] = "false",
    };

    private sealed class Rogue(ServerProcess? server, int exitCode, string output) : IAsyncDisposable
    {
        public ServerProcess? Server => server;

        public int ExitCode => exitCode;

        public string Output => output;

        public ValueTask DisposeAsync() => server?.DisposeAsync() ?? ValueTask.CompletedTask;
    }

    private async Task<Rogue> TryStartAsync(DatabaseCopy copy)
    {
        try
        {
            return new Rogue(await ServerProcess.StartAsync(Environment(copy), workingDirectory: copy.Directory, cancellationToken: Cancel), 0, "");
        }
        catch (ServerStartException e)
        {
            return new Rogue(null, e.ExitCode ?? -1, e.Output);
        }
    }
}
