using System.Text.RegularExpressions;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Crypto.Tests.Cli;

/// <summary><c>keys destroy</c>, run as the real executable: the end of a key version's life, and every way it refuses.</summary>
public sealed class KeyDestroyVerbTests : IDisposable
{
    private const string Passphrase = "a backup passphrase of some length";

    private readonly string _directory = Directory.CreateTempSubdirectory("crm-keys-destroy-").FullName;
    private readonly string _masterKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private string Database => $"Data Source={Path.Combine(_directory, "security.db")}";

    private Dictionary<string, string?> Environment_ => KeyVerbTests.EnvironmentFor(_directory, _masterKey);

    [Fact]
    public async Task Destroy_is_refused_while_scanned_values_still_use_the_version()
    {
        await SetUpRotatedAsync();

        var (exitCode, output) = await RunAsync("keys", "destroy", "--keyset", "fields", "--version", "1", "--scan", "contacts:email");

        Assert.Equal(1, exitCode);
        Assert.Contains("Keyset 'fields' version 1 is still needed: 3 value(s) in contacts (email)", output, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"fields\W+\w+\W+1\W+DecryptOnly"), (await RunAsync("keys", "list")).Output);
    }

    [Fact]
    public async Task Destroy_without_a_scan_of_the_fields_keyset_is_refused_and_the_primary_is_never_destroyed()
    {
        await SetUpRotatedAsync();

        var (unscanned, unscannedOutput) = await RunAsync("keys", "destroy", "--version", "1");
        var (primary, primaryOutput) = await RunAsync("keys", "destroy", "--version", "2", "--scan", "contacts:email");

        Assert.Equal(1, unscanned);
        Assert.Contains("no table was scanned", unscannedOutput, StringComparison.Ordinal);
        Assert.Equal(64, primary);
        Assert.Contains("Version 2 is the primary of keyset 'fields'", primaryOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_reencrypt_the_version_is_destroyed_its_values_fail_as_destroyed_older_backups_are_stale_and_a_restore_destroys_it_again()
    {
        var old = await SetUpRotatedAsync();
        var backup = Path.Combine(_directory, "before-destroy.backup");
        var passphrase = new Dictionary<string, string?>(Environment_) { ["CRM_SECURITY_BACKUP_PASSPHRASE"] = Passphrase };
        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "backup", "--out", backup], passphrase, _directory, TestContext.Current.CancellationToken)).ExitCode);
        var reencrypted = await RunAsync("reencrypt", "--tenant", "acme", "--table", "contacts", "--column", "email");
        Assert.True(reencrypted.ExitCode == 0, reencrypted.Output);

        var (exitCode, output) = await RunAsync("keys", "destroy", "--keyset", "fields", "--version", "1", "--scan", "contacts:email", "--actor", "key-custodian");

        Assert.True(exitCode == 0, output);
        Assert.Contains("Keyset 'fields' version 1 destroyed", output, StringComparison.Ordinal);
        Assert.Contains($"stale backup: {backup}", output, StringComparison.Ordinal);
        var list = (await RunAsync("keys", "list")).Output;
        Assert.Matches(new Regex(@"fields\W+\w+\W+1\W+Destroyed"), list);
        Assert.Contains($"backup {backup}", list, StringComparison.Ordinal);
        Assert.Contains("STALE", list, StringComparison.Ordinal);

        // A value still under the destroyed version (a copy kept from before the re-encryption) fails clearly.
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var keyring = Keyring.Load(Path.Combine(_directory, "keyring.json"), kek))
        using (var email = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(new FieldContext("acme", "contacts", "email")))
        {
            var failure = Assert.Throws<FieldDecryptionException>(() => email.DecryptString(old, "1"));
            Assert.Equal(DecryptFailureReason.KeyDestroyed, failure.Reason);
            Assert.Contains("destroyed", failure.Message, StringComparison.Ordinal);
            Assert.Equal("person1@example.org", email.DecryptString(await StoredEmailAsync(1), "1"));
        }

        // Audited: one admin_change event naming the version and who destroyed it.
        var events = await File.ReadAllLinesAsync(Path.Combine(_directory, "events.jsonl"), TestContext.Current.CancellationToken);
        var destroyEvent = Assert.Single(events, e => e.Contains("key_destroy", StringComparison.Ordinal) && e.Contains("\"privilege\":\"key_destroy\"", StringComparison.Ordinal));
        Assert.Contains("key-custodian", destroyEvent, StringComparison.Ordinal);
        Assert.Contains("fields/v1", destroyEvent, StringComparison.Ordinal);

        // Restoring the stale backup does not bring the key back.
        var restored = await ServerProcess.RunVerbAsync(["keys", "restore", "--in", backup, "--force"], passphrase, _directory, TestContext.Current.CancellationToken);
        Assert.True(restored.ExitCode == 0, restored.Output);
        Assert.Contains("this backup is stale", restored.Output, StringComparison.Ordinal);
        Assert.Contains("Destroyed again 1 key version(s)", restored.Output, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"fields\W+\w+\W+1\W+Destroyed"), (await RunAsync("keys", "list")).Output);
    }

    [Fact]
    public async Task A_forced_destroy_needs_the_keyset_and_version_typed_back()
    {
        await SetUpRotatedAsync();
        string[] arguments = ["keys", "destroy", "--version", "1", "--scan", "contacts:email", "--force"];

        using (var mistyped = VerbProcess.Start(arguments, Environment_, _directory, input: "fields v2\n"))
        {
            var (exitCode, output) = await mistyped.WaitAsync(TestContext.Current.CancellationToken);
            Assert.Equal(1, exitCode);
            Assert.Contains("the confirmation typed was not 'fields v1'", output, StringComparison.Ordinal);
        }

        Assert.Matches(new Regex(@"fields\W+\w+\W+1\W+DecryptOnly"), (await RunAsync("keys", "list")).Output);

        using (var typed = VerbProcess.Start(arguments, Environment_, _directory, input: "fields v1\n"))
        {
            var (exitCode, output) = await typed.WaitAsync(TestContext.Current.CancellationToken);
            Assert.True(exitCode == 0, output);
            Assert.Contains("Type 'fields v1' to destroy it", output, StringComparison.Ordinal);
        }

        Assert.Matches(new Regex(@"fields\W+\w+\W+1\W+Destroyed"), (await RunAsync("keys", "list")).Output);
        var events = await File.ReadAllTextAsync(Path.Combine(_directory, "events.jsonl"), TestContext.Current.CancellationToken);
        Assert.Contains("forced while still needed: 3 value(s) in contacts (email)", events, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_forced_destroy_with_no_standard_input_is_refused()
    {
        await SetUpRotatedAsync();

        // ServerProcess closes the verb's standard input at once: what a CI job without a terminal gives it.
        var (exitCode, output) = await RunAsync("keys", "destroy", "--version", "1", "--scan", "contacts:email", "--force");

        Assert.Equal(1, exitCode);
        Assert.Contains("there is none to read (no terminal). Nothing was destroyed.", output, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"fields\W+\w+\W+1\W+DecryptOnly"), (await RunAsync("keys", "list")).Output);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Keyring made, three contacts stored under version 1, then rotated to version 2; returns row 1's version-1 value.</summary>
    private async Task<byte[]> SetUpRotatedAsync()
    {
        Assert.Equal(0, (await RunAsync("keys", "init")).ExitCode);
        await using (var connection = new SqliteConnection(Database))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var create = connection.CreateCommand();
            create.CommandText = "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email BLOB)";
            await create.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
            using var kek = LocalMasterKey.FromBase64(_masterKey, "test");
            using var keyring = Keyring.Load(Path.Combine(_directory, "keyring.json"), kek);
            using var email = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(new FieldContext("acme", "contacts", "email"));
            for (var id = 1; id <= 3; id++)
            {
                await using var insert = connection.CreateCommand();
                insert.CommandText = "INSERT INTO contacts (id, email) VALUES ($id, $email)";
                insert.Parameters.AddWithValue("$id", id);
                insert.Parameters.AddWithValue("$email", email.EncryptString($"person{id}@example.org", id.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
            }
        }

        var old = await StoredEmailAsync(1);
        Assert.Equal(0, (await RunAsync("keys", "rotate")).ExitCode);
        return old;
    }

    private async Task<byte[]> StoredEmailAsync(int id)
    {
        await using var connection = new SqliteConnection(Database);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT email FROM contacts WHERE id = $id";
        select.Parameters.AddWithValue("$id", id);
        return (byte[])(await select.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    private Task<(int ExitCode, string Output)> RunAsync(params string[] arguments) =>
        ServerProcess.RunVerbAsync(arguments, Environment_, _directory, TestContext.Current.CancellationToken);
}
