using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Tests.Rotation;
using CrmSecurity.Crypto.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Crypto.Tests.Cli;

/// <summary>The reencrypt verb killed at random moments, as a crash would, and run again until it finishes.</summary>
public sealed class ReencryptVerbTests : IDisposable
{
    private const int Rows = 4000;
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-reencrypt-cli-").FullName;
    private readonly string _masterKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    [Fact]
    public async Task Killing_the_reencrypt_verb_at_random_moments_and_rerunning_it_leaves_every_row_readable_under_the_new_key()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var environment = KeyVerbTests.EnvironmentFor(_directory, _masterKey);
        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "init"], environment, _directory, cancellationToken)).ExitCode);
        var database = $"Data Source={Path.Combine(_directory, "security.db")}";
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var keyring = Keyring.Load(Path.Combine(_directory, "keyring.json"), kek))
        {
            await ReencryptionJobTests.FillAsync(ReencryptionJobTests.Store.Sqlite, database, keyring, Rows);
        }

        // Write-ahead logging, so the test's progress reads never wait behind the verb's commits: in rollback-journal mode
        // a poll could starve for thousands of rows, and a kill meant for row 900 landed at row 3,500.
        await using (var connection = new SqliteConnection(database))
        {
            await connection.OpenAsync(cancellationToken);
            await using var wal = connection.CreateCommand();
            wal.CommandText = "PRAGMA journal_mode=WAL";
            Assert.Equal("wal", (string?)await wal.ExecuteScalarAsync(cancellationToken));
        }

        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "rotate"], environment, _directory, cancellationToken)).ExitCode);

        string[] verb = ["reencrypt", "--tenant", "acme", "--table", "accounts", "--key-column", "id", "--column", "email", "--column", "national_id", "--batch", "2"];
        var random = new Random(4711);
        var kills = 0;
        var killedMidway = 0;
        int? exitCode = null;
        var trace = new System.Text.StringBuilder(); // each run's progress, for a failure message that says what happened
        for (var run = 0; run < 40 && exitCode is null; run++)
        {
            using var process = VerbProcess.Start(verb, environment, _directory);
            if (run == 0)
            {
                // Once during start-up, before any batch.
                exitCode = await process.KillAfterAsync(TimeSpan.FromMilliseconds(random.Next(50, 400)), cancellationToken);
            }
            else if (run < 8)
            {
                // Then at random points of the job itself: the moment is chosen by progress, not by the clock, so it does not depend on this machine's speed.
                var before = await RowsDoneAsync(database);
                // At most a quarter of what is left, in batches of two rows (a commit each), so seven kills still leave work
                // for the next run: a kill lands some batches after its target, and with batches of ten and 60% the job
                // finished between two polls after four kills.
                var target = before + random.Next(1, Math.Max(2, (int)((Rows - before) * 0.25)));
                while (!process.HasExited && await RowsDoneAsync(database) < target)
                {
                    await Task.Delay(5, cancellationToken);
                }

                trace.Append(System.Globalization.CultureInfo.InvariantCulture, $"run {run}: from {before} to {target}, {(process.HasExited ? $"exited {process.ExitCode}: {process.Output.Trim().Split('\n')[^1]}" : "killed")}; ");
                if (process.HasExited)
                {
                    exitCode = process.ExitCode;
                }
                else
                {
                    await process.KillAsync();
                }
            }
            else
            {
                exitCode = await process.KillAfterAsync(TimeSpan.FromMinutes(5), cancellationToken);
            }

            if (exitCode is null)
            {
                kills++;
                var done = await RowsDoneAsync(database);
                if (done is > 0 and < Rows)
                {
                    killedMidway++;
                }
            }
            else
            {
                Assert.True(exitCode == 0, process.Output);
            }
        }

        Assert.Equal(0, exitCode);
        Assert.True(kills >= 5, $"only {kills} kills: {trace}");
        Assert.True(killedMidway >= 1, $"no kill landed in the middle of the job ({kills} kills)");
        using var finalKek = LocalMasterKey.FromBase64(_masterKey, "test");
        using var encryption = new FieldEncryption(Keyring.Load(Path.Combine(_directory, "keyring.json"), finalKek), null, new RecordingEventSink());
        await ReencryptionJobTests.AssertAllUnderPrimaryAsync(ReencryptionJobTests.Store.Sqlite, database, encryption, Rows);
    }

    [Fact]
    public async Task The_reencrypt_verb_moves_text_form_ciphertexts_to_the_new_key_and_keeps_them_text()
    {
        const int rows = 40;
        var (environment, database) = await TextTableUnderRotatedKeyAsync(rows);

        var (exitCode, output) = await ServerProcess.RunVerbAsync(
            ["reencrypt", "--tenant", "acme", "--table", "contacts", "--column", "email", "--column", "national_id"], environment, _directory, TestContext.Current.CancellationToken);

        Assert.True(exitCode == 0, output);
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var encryption = new FieldEncryption(Keyring.Load(Path.Combine(_directory, "keyring.json"), kek), null, new RecordingEventSink()))
        {
            await ReencryptionJobTests.AssertAllTextUnderPrimaryAsync(ReencryptionJobTests.Store.Sqlite, database, encryption, rows);
        }

        var nulls = ReencryptionJobTests.TextNulls(rows);
        Assert.Contains(
            $"reencrypt contacts: {rows} rows, {2 * rows} values: {(2 * rows) - nulls} re-encrypted, 0 already current, {nulls} null or empty, " +
            "0 under another keyset (not touched), 0 could not be decrypted, 0 not a ciphertext.",
            output,
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_value_that_is_no_ciphertext_makes_the_reencrypt_verb_fail_naming_its_table_column_and_row()
    {
        const int rows = 20;
        var (environment, database) = await TextTableUnderRotatedKeyAsync(rows);
        await using (var connection = new SqliteConnection(database))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var plain = connection.CreateCommand();
            plain.CommandText = "UPDATE contacts SET email = 'carol@example.com' WHERE id = 7";
            Assert.Equal(1, await plain.ExecuteNonQueryAsync(TestContext.Current.CancellationToken));
        }

        var (exitCode, output) = await ServerProcess.RunVerbAsync(
            ["reencrypt", "--tenant", "acme", "--table", "contacts", "--column", "email", "--column", "national_id"], environment, _directory, TestContext.Current.CancellationToken);

        Assert.True(exitCode == 1, output);
        Assert.Contains("contacts.email, row 7: not a ciphertext", output, StringComparison.Ordinal);
        Assert.Contains("1 not a ciphertext.", output, StringComparison.Ordinal);
        Assert.DoesNotContain("carol@example.com", output, StringComparison.Ordinal); // it may be a plaintext that was never encrypted
        await using (var connection = new SqliteConnection(database))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var read = connection.CreateCommand();
            read.CommandText = "SELECT email FROM contacts WHERE id = 7";
            Assert.Equal("carol@example.com", (string?)await read.ExecuteScalarAsync(TestContext.Current.CancellationToken));
        }
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>A keyring made by <c>keys init</c>, a <c>contacts</c> table of text-form ciphertexts under its first version, then <c>keys rotate</c>.</summary>
    private async Task<(Dictionary<string, string?> Environment, string Database)> TextTableUnderRotatedKeyAsync(int rows)
    {
        var environment = KeyVerbTests.EnvironmentFor(_directory, _masterKey);
        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "init"], environment, _directory, TestContext.Current.CancellationToken)).ExitCode);
        var database = $"Data Source={Path.Combine(_directory, "security.db")}";
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var keyring = Keyring.Load(Path.Combine(_directory, "keyring.json"), kek))
        {
            await ReencryptionJobTests.FillTextAsync(ReencryptionJobTests.Store.Sqlite, database, keyring, rows);
        }

        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "rotate"], environment, _directory, TestContext.Current.CancellationToken)).ExitCode);
        return (environment, database);
    }

    private static async Task<long> RowsDoneAsync(string database)
    {
        if (!File.Exists(database["Data Source=".Length..]))
        {
            return 0;
        }

        await using var connection = new SqliteConnection(database);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COALESCE(MAX(rows_done), 0) FROM crypto_reencryption_checkpoints";
        try
        {
            return (long)(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 1)
        {
            return 0; // the verb has not created the module's tables yet
        }
    }
}
