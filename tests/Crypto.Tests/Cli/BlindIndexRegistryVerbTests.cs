using System.Globalization;
using System.Text.Json;
using CrmSecurity.Crypto.Subjects;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Crypto.Tests.Cli;

/// <summary>
/// <c>blind-index define / rows / remove / list</c>, run as the real executable: the registry's CLI twin of the admin API,
/// with the same leakage planner and audit; and the schema upgrade that brought the registry's tables (Crypto schema 3).
/// </summary>
public sealed class BlindIndexRegistryVerbTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-bidx-registry-").FullName;
    private readonly string _masterKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private string DatabasePath => Path.Combine(_directory, "security.db");

    [Fact]
    public async Task Define_plans_the_bits_refuses_a_leaky_index_with_the_planners_reason_and_audits_each_change()
    {
        var environment = KeyVerbTests.EnvironmentFor(_directory, _masterKey);
        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "init"], environment, _directory, Cancel)).ExitCode);

        var defined = await ServerProcess.RunVerbAsync(
            ["blind-index", "define", "--table", "contact", "--column", "phone", "--name", "phone_eq", "--normaliser", "phone-e164", "--expected-rows", "1000000", "--actor", "dave@cli"],
            environment, _directory, Cancel);
        var leaky = await ServerProcess.RunVerbAsync(
            ["blind-index", "define", "--table", "contact", "--column", "phone", "--name", "phone_wide", "--normaliser", "phone-e164", "--bits", "40", "--actor", "dave@cli"],
            environment, _directory, Cancel);
        var rows = await ServerProcess.RunVerbAsync(
            ["blind-index", "rows", "--table", "contact", "--column", "phone", "--expected-rows", "3", "--actor", "dave@cli"], environment, _directory, Cancel);
        var list = await ServerProcess.RunVerbAsync(["blind-index", "list"], environment, _directory, Cancel);
        var removed = await ServerProcess.RunVerbAsync(
            ["blind-index", "remove", "--table", "contact", "--column", "phone", "--name", "phone_eq", "--actor", "dave@cli"], environment, _directory, Cancel);

        Assert.True(defined.ExitCode == 0, defined.Output);
        Assert.Contains("Changed: contact.phone, 1000000 expected rows, indexes: phone_eq (phone-e164, whole, 18 bits).", defined.Output, StringComparison.Ordinal);
        Assert.Equal(1, leaky.ExitCode);
        Assert.Contains("error: bits: refused by the leakage planner", leaky.Output, StringComparison.Ordinal);
        Assert.Contains("Refused: C < 2", leaky.Output, StringComparison.Ordinal);
        // Three rows cannot carry an 18-bit index: the planner refuses the new row count and the column keeps its own.
        Assert.Equal(1, rows.ExitCode);
        Assert.Contains("error: expectedRows: refused by the leakage planner", rows.Output, StringComparison.Ordinal);
        Assert.True(list.ExitCode == 0, list.Output);
        Assert.Contains("contact.phone (registry, 1000000 expected rows)", list.Output, StringComparison.Ordinal);
        Assert.Contains("phone_eq: phone-e164, whole, 18 bits", list.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("phone_wide", list.Output, StringComparison.Ordinal);
        Assert.True(removed.ExitCode == 0, removed.Output);

        var events = (await File.ReadAllLinesAsync(Path.Combine(_directory, "events.jsonl"), Cancel))
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(e => e.GetProperty("privilege").GetString() == "crypto_blind_index")
            .ToList();
        Assert.Equal(2, events.Count); // the definition and the removal; refused changes wrote nothing
        Assert.All(events, e => Assert.Equal("dave@cli", e.GetProperty("user_id").GetString()));
        Assert.Contains("before none after", events[0].GetProperty("details").GetString(), StringComparison.Ordinal);
        Assert.Contains("\"indexes\":[]", events[1].GetProperty("details").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_schema_2_database_gets_the_registry_tables_keeping_its_checkpoints_and_tombstones()
    {
        var environment = KeyVerbTests.EnvironmentFor(_directory, _masterKey);
        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "init"], environment, _directory, Cancel)).ExitCode);

        // What the previous build left: Crypto schema 2, without the registry's tables, with a job's checkpoint and a shred.
        await ExecuteAsync(
            "DROP TABLE crypto_blind_index_columns; DROP TABLE crypto_blind_index_definitions; " +
            "UPDATE crm_schema_modules SET version = 2 WHERE module = 'crypto'; " +
            "INSERT INTO crypto_reencryption_checkpoints (job, last_key, rows_done, completed, updated_at) VALUES ('acme/contacts', '42', 42, 0, '2026-12-01 00:00:00+00:00'); " +
            "INSERT INTO crypto_subject_tombstones (tenant, subject_id, shredded_at) VALUES ('acme', 'c-7', '2026-12-01 00:00:00+00:00');");
        Assert.Equal(0L, await ScalarAsync("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'crypto_blind_index_%'"));

        var (exitCode, output) = await ServerProcess.RunVerbAsync(
            ["blind-index", "define", "--table", "contact", "--column", "phone", "--name", "phone_eq", "--normaliser", "phone-e164", "--expected-rows", "1000000"],
            environment, _directory, Cancel);

        Assert.True(exitCode == 0, output);
        Assert.Contains($"from schema version 2 to {CryptoDbContext.SchemaVersion}", output, StringComparison.Ordinal);
        Assert.Equal(3, CryptoDbContext.SchemaVersion);
        Assert.Equal((long)CryptoDbContext.SchemaVersion, await ScalarAsync("SELECT version FROM crm_schema_modules WHERE module = 'crypto'"));
        Assert.Equal(1L, await ScalarAsync("SELECT COUNT(*) FROM crypto_blind_index_definitions WHERE name = 'phone_eq' AND bits = 18"));
        Assert.Equal(42L, await ScalarAsync("SELECT rows_done FROM crypto_reencryption_checkpoints WHERE job = 'acme/contacts'"));
        Assert.Equal(1L, await ScalarAsync("SELECT COUNT(*) FROM crypto_subject_tombstones WHERE subject_id = 'c-7'"));
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task The_documented_registry_commands_run_in_order(string provider)
    {
        var environment = KeyVerbTests.EnvironmentFor(_directory, _masterKey);
        await using var postgres = provider == "PostgreSql" ? await PostgresDatabase.CreateAsync(cancellationToken: Cancel) : null;
        if (postgres is not null)
        {
            environment["Database__Provider"] = "PostgreSql";
            environment["Database__ConnectionString"] = postgres.ConnectionString;
        }

        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "init"], environment, _directory, Cancel)).ExitCode);
        var outputs = new List<string>();
        foreach (var arguments in DocumentedCommands())
        {
            var (exitCode, output) = await ServerProcess.RunVerbAsync(arguments, environment, _directory, Cancel);
            Assert.True(exitCode == 0, $"{string.Join(' ', arguments)}: exit {exitCode}{Environment.NewLine}{output}");
            outputs.Add(output);
        }

        Assert.Equal(5, outputs.Count);
        Assert.Contains("indexes: mobile_eq (phone-e164, whole, 12 bits), mobile_last4 (phone-e164, last-4, 6 bits).", outputs[1], StringComparison.Ordinal);
        Assert.Contains("Changed: lead.mobile, 2000000 expected rows", outputs[2], StringComparison.Ordinal);
        Assert.Contains("lead.mobile (registry, 2000000 expected rows)", outputs[3], StringComparison.Ordinal);
        Assert.Contains("Accepted", outputs[3], StringComparison.Ordinal);
        Assert.Contains("indexes: mobile_eq (phone-e164, whole, 12 bits).", outputs[4], StringComparison.Ordinal);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>The commands of the block marked <c>blind-index-registry</c> in docs/crypto-operations.md, split into arguments.</summary>
    private static List<string[]> DocumentedCommands()
    {
        string? page = null;
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null && page is null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "docs", "crypto-operations.md");
            page = File.Exists(candidate) ? candidate : null;
        }

        var lines = File.ReadAllLines(page ?? throw new FileNotFoundException("docs/crypto-operations.md was not found above the test's directory."));
        var marker = Array.FindIndex(lines, l => l.StartsWith("<!-- blind-index-registry:", StringComparison.Ordinal));
        Assert.True(marker >= 0 && lines[marker + 1] == "```sh", "docs/crypto-operations.md has no blind-index-registry block.");
        return [.. lines.Skip(marker + 2).TakeWhile(l => l != "```").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))];
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=false");
        await connection.OpenAsync(Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(Cancel);
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=false");
        await connection.OpenAsync(Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(Cancel), CultureInfo.InvariantCulture);
    }
}
