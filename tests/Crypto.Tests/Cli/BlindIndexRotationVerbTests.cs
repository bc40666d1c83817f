using System.Globalization;
using System.Text.RegularExpressions;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Crypto.Tests.Cli;

/// <summary>Blind-index key rotation, run as the real executable: the block of docs/crypto-operations.md, and the refusals.</summary>
public sealed class BlindIndexRotationVerbTests : IDisposable
{
    private const int Rows = 40;
    private const string Index = "email_bidx:email:email_eq:email:whole:20";
    private static readonly BlindIndexDefinition Email = new("email_eq", 20, Normaliser.Email);
    private static readonly FieldContext Context = new("acme", "contacts", "email");

    private readonly string _directory = Directory.CreateTempSubdirectory("crm-bidx-verbs-").FullName;
    private readonly string _masterKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private string Database => $"Data Source={Path.Combine(_directory, "security.db")}";

    private Dictionary<string, string?> Environment_ => KeyVerbTests.EnvironmentFor(_directory, _masterKey);

    [Fact]
    public async Task Rotating_the_blind_index_keyset_without_the_recompute_job_is_refused_naming_the_job()
    {
        Assert.Equal(0, (await RunAsync("keys", "init")).ExitCode);

        var (plain, plainOutput) = await RunAsync("keys", "rotate", "--keyset", "blind-index");
        Assert.Equal(64, plain);
        Assert.Contains("run the `blind-index recompute` job for every table holding blind indexes", plainOutput, StringComparison.Ordinal);

        Assert.Equal(0, (await RunAsync("keys", "rotate", "--keyset", "blind-index", "--stage")).ExitCode);
        var (again, againOutput) = await RunAsync("keys", "rotate", "--keyset", "blind-index", "--stage");
        Assert.Equal(64, again);
        Assert.Contains("already has version 2 staged", againOutput, StringComparison.Ordinal);

        var (promote, promoteOutput) = await RunAsync("keys", "rotate", "--keyset", "blind-index");
        Assert.Equal(64, promote);
        Assert.Contains("staged version 2 is not promoted: no `blind-index recompute` job has run for version 2", promoteOutput, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"blind-index\W+[0-9a-f]{8}\W+2\W+Active\W+\d{4}-"), (await RunAsync("keys", "list")).Output); // still staged, not primary
    }

    [Fact]
    public async Task The_documented_rotation_moves_every_stored_index_to_the_new_version_and_destroys_the_old_one()
    {
        Assert.Equal(0, (await RunAsync("keys", "init")).ExitCode);
        await ExecuteAsync("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email BLOB, email_bidx BLOB)");
        for (var id = 1; id <= Rows; id++)
        {
            await InsertAsync(id);
        }

        var commands = DocumentedCommands();
        Assert.Equal(7, commands.Count);

        // 0. The index is registered (20 bits for 4,000,000 rows): the jobs below name it and take its definition from there.
        await AssertRunsAsync(commands[0], "email_eq (email, whole, 20 bits)");
        commands.RemoveAt(0);

        // 1. Stage, 2. recompute: every index moves to version 2 while the application still writes version 1.
        await AssertRunsAsync(commands[0], "Keyset 'blind-index': version 2 added (staged, not primary).");
        await AssertRunsAsync(commands[1], $"{Rows} rows; index values found: {Rows} under version 1;", $"{Rows} written under version 2.");
        var (early, earlyOutput) = await RunAsync("keys", "destroy", "--keyset", "blind-index", "--version", "2", "--scan-index", "contacts", "--tenant", "acme", "--index", Index);
        Assert.Equal(1, early);
        Assert.Contains($"{Rows} blind index value(s) in contacts (email_bidx) are under it", earlyOutput, StringComparison.Ordinal);

        // A row the application writes under version 1 after the job passed it, before the promotion reaches it.
        await InsertAsync(Rows + 1);

        // 3. Promote (allowed now), 4. switch over: the late row moves too.
        await AssertRunsAsync(commands[2], "Keyset 'blind-index': version 2 is now primary; older versions decrypt only.");
        var (refused, refusedOutput) = await RunAsync("keys", "destroy", "--keyset", "blind-index", "--version", "1", "--scan-index", "contacts", "--tenant", "acme", "--index", Index);
        Assert.Equal(1, refused);
        Assert.Contains("1 blind index value(s) in contacts (email_bidx) are under it (run `blind-index recompute`)", refusedOutput, StringComparison.Ordinal);
        await AssertRunsAsync(commands[3], $"{Rows + 1} rows; index values found: 1 under version 1, {Rows} under version 2;", "1 written under version 2.");

        // 5. Usage of version 1 is 0, and destroy removes it.
        var usage = await AssertRunsAsync(commands[4], $"{Rows + 1} index values under a live version, 0 missing, 0 matching no version");
        Assert.Matches(new Regex(@"blind-index\W+1\W+DecryptOnly\W+0\b"), usage);
        Assert.Matches(new Regex($@"blind-index\W+2\W+Active, primary\W+{Rows + 1}\b"), usage);
        var (_, withoutScan) = await RunAsync("keys", "destroy", "--keyset", "blind-index", "--version", "1");
        Assert.Contains("no blind index was scanned", withoutScan, StringComparison.Ordinal);
        await AssertRunsAsync(commands[5], "Keyset 'blind-index' version 1 destroyed");
        Assert.Matches(new Regex(@"blind-index\W+[0-9a-f]{8}\W+1\W+Destroyed"), (await RunAsync("keys", "list")).Output);
    }

    [Fact]
    public async Task A_recompute_names_a_registered_index_and_cannot_redefine_it()
    {
        Assert.Equal(0, (await RunAsync("keys", "init")).ExitCode);
        await ExecuteAsync("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email BLOB, email_bidx BLOB)");
        await InsertAsync(1);
        Assert.Equal(0, (await RunAsync("blind-index", "define", "--table", "contacts", "--column", "email", "--name", "email_eq", "--normaliser", "email", "--expected-rows", "4000000")).ExitCode);
        Assert.Equal(0, (await RunAsync("keys", "rotate", "--keyset", "blind-index", "--stage")).ExitCode);

        // Fewer bits than the registry's 20: the job would write indexes no lookup computes, so it is refused and writes nothing.
        var (narrower, narrowerOutput) = await RunAsync("blind-index", "recompute", "--tenant", "acme", "--table", "contacts", "--index", "email_bidx:email:email_eq:email:whole:8");
        Assert.Equal(64, narrower);
        Assert.Contains("index 'email_eq' is registered as email:whole:20, not email:whole:8", narrowerOutput, StringComparison.Ordinal);
        // A name the registry does not know.
        var (unknown, unknownOutput) = await RunAsync("blind-index", "recompute", "--tenant", "acme", "--table", "contacts", "--index", "email_bidx:email:email_prefix");
        Assert.Equal(64, unknown);
        Assert.Contains("contacts.email has no blind index 'email_prefix' in the blind-index registry", unknownOutput, StringComparison.Ordinal);
        var (usage, usageOutput) = await RunAsync("keys", "usage", "--table", "contacts", "--tenant", "acme", "--index", "email_bidx:email:email_eq");
        Assert.True(usage == 0, usageOutput);
        Assert.Matches(new Regex(@"blind-index\W+1\W+Active, primary\W+1\b"), usageOutput); // nothing moved by the refused runs

        // Named by the registry, the job recomputes under the registered definition.
        await AssertRunsAsync(["blind-index", "recompute", "--tenant", "acme", "--table", "contacts", "--index", "email_bidx:email:email_eq"], "1 rows; index values found: 1 under version 1;", "1 written under version 2.");
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>The commands of the block marked <c>blind-index-rotation</c> in docs/crypto-operations.md, split into arguments.</summary>
    private static List<string[]> DocumentedCommands()
    {
        var lines = File.ReadAllLines(OperationsPage());
        var marker = Array.FindIndex(lines, l => l.StartsWith("<!-- blind-index-rotation:", StringComparison.Ordinal));
        Assert.True(marker >= 0 && lines[marker + 1] == "```sh", "docs/crypto-operations.md has no blind-index-rotation block.");
        return [.. lines.Skip(marker + 2).TakeWhile(l => l != "```").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))];
    }

    private static string OperationsPage()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "docs", "crypto-operations.md");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("docs/crypto-operations.md was not found above the test's directory.");
    }

    private async Task<string> AssertRunsAsync(string[] arguments, params string[] expected)
    {
        var (exitCode, output) = await RunAsync(arguments);
        Assert.True(exitCode == 0, $"{string.Join(' ', arguments)}: exit {exitCode}{Environment.NewLine}{output}");
        foreach (var text in expected)
        {
            Assert.Contains(text, output, StringComparison.Ordinal);
        }

        return output;
    }

    // What the application writes: the value under fields' primary, its index under blind-index's primary.
    private async Task InsertAsync(int id)
    {
        using var kek = LocalMasterKey.FromBase64(_masterKey, "test");
        using var keyring = Keyring.Load(Path.Combine(_directory, "keyring.json"), kek);
        using var encryptor = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(Context);
        using var index = keyring.Get(Keyring.BlindIndexKeyset).CreateBlindIndex(Context, Email);
        var rowId = id.ToString(CultureInfo.InvariantCulture);
        var value = $"Person{rowId}@Example.org";
        await using var connection = new SqliteConnection(Database);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO contacts (id, email, email_bidx) VALUES ($id, $email, $index)";
        insert.Parameters.AddWithValue("$id", id);
        insert.Parameters.AddWithValue("$email", encryptor.EncryptString(value, rowId));
        insert.Parameters.AddWithValue("$index", index.Compute(value));
        await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new SqliteConnection(Database);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }

    private Task<(int ExitCode, string Output)> RunAsync(params string[] arguments) =>
        ServerProcess.RunVerbAsync(arguments, Environment_, _directory, TestContext.Current.CancellationToken);
}
