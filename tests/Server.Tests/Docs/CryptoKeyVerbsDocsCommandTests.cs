using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// The "Key verbs" block of docs/crypto.md, run with bash as written, in order, as the built executable on a temporary
/// keyring and SQLite database holding the <c>contacts</c> table the shred purges: each verb succeeds and the shred,
/// the backup and the restore say what they did.
/// </summary>
public sealed partial class CryptoKeyVerbsDocsCommandTests : IDisposable
{
    private readonly string _directory = DocCommands.TemporaryDirectory();

    [Fact]
    public async Task The_key_verbs_run_as_written_from_init_to_reapply_shreds()
    {
        var block = DocCommands.Block("crypto.md", "key-verbs-commands");
        // `[--shred-log exported-events.jsonl]` is optional: this installation's access-event log is the shred log.
        var script = OptionalArguments().Replace(block, "");
        var database = Path.Combine(_directory, "security.db");
        await using (var connection = new SqliteConnection($"Data Source={database}"))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE contacts (id TEXT PRIMARY KEY, email_bidx BLOB); INSERT INTO contacts VALUES ('42', x'abcd'), ('43', x'beef');";
            await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        SqliteConnection.ClearAllPools();

        var (exit, output) = await DocCommands.RunAsync(script, _directory, new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={database}",
            ["Crypto__KeyringPath"] = Path.Combine(_directory, "keyring.json"),
            ["Crypto__AccessEventLog"] = Path.Combine(_directory, "events.jsonl"),
        });

        Assert.True(exit == 0, output);
        Assert.True(File.Exists(Path.Combine(_directory, "keys.backup")), output);
        Assert.Contains("Restored the backup", output, StringComparison.Ordinal);
        await using (var connection = new SqliteConnection($"Data Source={database}"))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT group_concat(id) FROM contacts WHERE email_bidx IS NULL";
            Assert.Equal("42", await command.ExecuteScalarAsync(TestContext.Current.CancellationToken));
        }

        SqliteConnection.ClearAllPools();
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [GeneratedRegex(@"\s*\[--[^\]]*\]")]
    private static partial Regex OptionalArguments();
}
