using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Subjects;
using CrmSecurity.Crypto.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using CrmSecurity.Crypto.Keys.Insecure;

namespace CrmSecurity.Crypto.Tests.Cli;

/// <summary>The key-management verbs, run as the real executable.</summary>
public sealed class KeyVerbTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-keys-cli-").FullName;
    private readonly string _masterKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private string KeyringPath => Path.Combine(_directory, "keyring.json");

    [Fact]
    public async Task A_missing_master_key_stops_the_verb_with_exit_78_naming_the_variable()
    {
        var environment = Environment_();
        environment["CRM_SECURITY_MASTER_KEY"] = null;

        var (exitCode, output) = await RunAsync(["keys", "list"], environment);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:MasterKey:Variable", output, StringComparison.Ordinal);
        Assert.Contains("CRM_SECURITY_MASTER_KEY", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreadable_keyring_stops_the_verb_with_exit_78_naming_the_setting()
    {
        await File.WriteAllTextAsync(KeyringPath, "{ this is not a keyring", TestContext.Current.CancellationToken);

        var (exitCode, output) = await RunAsync(["keys", "list"]);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:KeyringPath", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_hsm_token_that_is_not_there_stops_the_verb_with_exit_78_naming_the_setting()
    {
        var environment = Environment_();
        environment["Crypto__MasterKey__Source"] = "Pkcs11";
        environment["Crypto__Pkcs11__ModulePath"] = SoftHsm.ModulePath;
        environment["Crypto__Pkcs11__TokenLabel"] = "no-such-token";
        environment["CRM_SECURITY_PKCS11_PIN"] = SoftHsm.Pin;

        var (exitCode, output) = await RunAsync(["keys", "list"], environment);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:Pkcs11:TokenLabel", output, StringComparison.Ordinal);
        Assert.Contains("no-such-token", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_label_missing_from_the_token_stops_the_verb_with_exit_78_naming_the_setting()
    {
        var environment = Environment_();
        environment["Crypto__MasterKey__Source"] = "Pkcs11";
        environment["Crypto__Pkcs11__ModulePath"] = SoftHsm.ModulePath;
        environment["Crypto__Pkcs11__TokenLabel"] = SoftHsm.TokenLabel;
        environment["Crypto__Pkcs11__KeyLabel"] = "no-such-key";
        environment["CRM_SECURITY_PKCS11_PIN"] = SoftHsm.Pin;

        var (exitCode, output) = await RunAsync(["keys", "list"], environment);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:Pkcs11:KeyLabel", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Init_rotate_and_list_show_versions_and_statuses_but_never_key_material()
    {
        Assert.Equal(0, (await RunAsync(["keys", "init"])).ExitCode);
        Assert.NotEqual(0, (await RunAsync(["keys", "init"])).ExitCode); // never overwrites
        Assert.Equal(0, (await RunAsync(["keys", "rotate"])).ExitCode);

        var (exitCode, output) = await RunAsync(["keys", "list"]);

        Assert.Equal(0, exitCode);
        Assert.Matches(@"fields\s+│\s+[0-9a-f]{8}\s+│\s+1\s+│\s+DecryptOnly", output);
        Assert.Matches(@"fields\s+│\s+[0-9a-f]{8}\s+│\s+2\s+│\s+Active\s+│\s+yes", output);
        using var kek = LocalMasterKey.FromBase64(_masterKey, "test");
        using var keyring = Keyring.Load(KeyringPath, kek);
        foreach (var keyset in keyring.Keysets)
        {
            foreach (var version in keyset.Versions.Where(v => v.Status != KeyStatus.Destroyed))
            {
                Assert.DoesNotContain(Convert.ToBase64String(InsecureCleartextKeyMaterial.Export(keyset, version.Version)), output, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task A_pkcs11_keyring_is_created_on_the_token_and_listed()
    {
        var token = SoftHsm.InitialiseToken(); // a new token: the test process's loaded module does not need to see it
        var environment = Environment_();
        environment["Crypto__MasterKey__Source"] = "Pkcs11";
        environment["Crypto__Pkcs11__ModulePath"] = SoftHsm.ModulePath;
        environment["Crypto__Pkcs11__TokenLabel"] = token;
        environment["CRM_SECURITY_PKCS11_PIN"] = SoftHsm.Pin;

        var init = await RunAsync(["keys", "init"], environment);
        var list = await RunAsync(["keys", "list"], environment);

        Assert.Equal(0, init.ExitCode);
        Assert.Contains($"pkcs11:{token}/crm-security-kek", init.Output, StringComparison.Ordinal);
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("blind-index", list.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_backup_restored_on_a_fresh_machine_makes_old_fields_readable_again()
    {
        Assert.Equal(0, (await RunAsync(["keys", "init"])).ExitCode);
        Assert.Equal(0, (await RunAsync(["keys", "list"])).ExitCode); // creates the subject-key store
        byte[] ciphertext;
        byte[] subjectCiphertext;
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var keyring = Keyring.Load(KeyringPath, kek))
        using (var encryptor = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(new FieldContext("acme", "contacts", "email")))
        {
            ciphertext = encryptor.EncryptString("alice@example.com", "1");
            subjectCiphertext = await EncryptForSubjectAsync(_directory, keyring, "p1", "bob's notes");
        }

        var backup = Path.Combine(_directory, "keyring.backup");
        var environment = Environment_();
        environment["CRM_SECURITY_BACKUP_PASSPHRASE"] = "correct horse battery staple";
        Assert.Equal(0, (await RunAsync(["keys", "backup", "--out", backup], environment)).ExitCode);

        // A fresh machine: no keyring, another master key, another database.
        var fresh = Directory.CreateDirectory(Path.Combine(_directory, "fresh")).FullName;
        var freshKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var freshEnvironment = Environment_(fresh, freshKey);
        freshEnvironment["CRM_SECURITY_BACKUP_PASSPHRASE"] = "wrong horse battery staple";
        Assert.Equal(1, (await RunAsync(["keys", "restore", "--in", backup], freshEnvironment)).ExitCode);
        freshEnvironment["CRM_SECURITY_BACKUP_PASSPHRASE"] = "correct horse battery staple";
        var restore = await RunAsync(["keys", "restore", "--in", backup], freshEnvironment);

        Assert.Equal(0, restore.ExitCode);
        using var freshKek = LocalMasterKey.FromBase64(freshKey, "test");
        using var restored = Keyring.Load(Path.Combine(fresh, "keyring.json"), freshKek);
        using var again = restored.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(new FieldContext("acme", "contacts", "email"));
        Assert.Equal("alice@example.com", again.DecryptString(ciphertext, "1"));
        Assert.Equal("bob's notes", await DecryptForSubjectAsync(fresh, restored, "p1", subjectCiphertext)); // the subject-key store came back too
        Assert.Contains("1 record(s) added", restore.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_backup_taken_before_a_shred_and_restored_after_the_key_store_was_lost_does_not_bring_the_subject_back()
    {
        Assert.Equal(0, (await RunAsync(["keys", "init"])).ExitCode);
        Assert.Equal(0, (await RunAsync(["keys", "list"])).ExitCode);
        byte[] shredded, kept;
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var keyring = Keyring.Load(KeyringPath, kek))
        {
            shredded = await EncryptForSubjectAsync(_directory, keyring, "p1", "to be forgotten");
            kept = await EncryptForSubjectAsync(_directory, keyring, "p2", "stays");
        }

        var backup = Path.Combine(_directory, "keys.backup");
        var environment = Environment_();
        environment["CRM_SECURITY_BACKUP_PASSPHRASE"] = "correct horse battery staple";
        Assert.Equal(0, (await RunAsync(["keys", "backup", "--out", backup], environment)).ExitCode);
        Assert.Equal(0, (await RunAsync(["keys", "shred", "--tenant", "acme", "--subject", "p1", "--actor", "dpo@acme"])).ExitCode);

        // The key store is lost (the data database, with its tombstones, is not); the keys are restored from the backup.
        SqliteConnection.ClearAllPools();
        File.Delete(Path.Combine(_directory, "subject-keys.db"));
        var restore = await RunAsync(["keys", "restore", "--in", backup, "--force"], environment);

        Assert.Equal(0, restore.ExitCode);
        Assert.Contains("Re-applied 1 shred(s) recorded after the backup: 1 restored subject key(s) destroyed again", restore.Output, StringComparison.Ordinal);
        using var restoredKek = LocalMasterKey.FromBase64(_masterKey, "test");
        using var restored = Keyring.Load(KeyringPath, restoredKek);
        var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => DecryptForSubjectAsync(_directory, restored, "p1", shredded));
        Assert.Equal(DecryptFailureReason.SubjectShredded, error.Reason);
        Assert.Equal("stays", await DecryptForSubjectAsync(_directory, restored, "p2", kept));
    }

    [Fact]
    public async Task On_a_fresh_machine_a_key_backup_restored_with_the_shipped_event_log_does_not_bring_a_later_shred_back()
    {
        Assert.Equal(0, (await RunAsync(["keys", "init"])).ExitCode);
        Assert.Equal(0, (await RunAsync(["keys", "list"])).ExitCode);
        byte[] shredded;
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var keyring = Keyring.Load(KeyringPath, kek))
        {
            shredded = await EncryptForSubjectAsync(_directory, keyring, "p1", "to be forgotten");
        }

        var backup = Path.Combine(_directory, "keys.backup");
        var environment = Environment_();
        environment["CRM_SECURITY_BACKUP_PASSPHRASE"] = "correct horse battery staple";
        Assert.Equal(0, (await RunAsync(["keys", "backup", "--out", backup], environment)).ExitCode);
        Assert.Equal(0, (await RunAsync(["keys", "shred", "--tenant", "acme", "--subject", "p1"])).ExitCode);

        // Machine, data database and key store all lost; the audit trail kept the shred event.
        var fresh = Directory.CreateDirectory(Path.Combine(_directory, "fresh")).FullName;
        var freshKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var freshEnvironment = Environment_(fresh, freshKey);
        freshEnvironment["CRM_SECURITY_BACKUP_PASSPHRASE"] = "correct horse battery staple";
        var restore = await RunAsync(["keys", "restore", "--in", backup, "--shred-log", Path.Combine(_directory, "events.jsonl")], freshEnvironment);

        Assert.Equal(0, restore.ExitCode);
        Assert.Contains("1 restored subject key(s) destroyed again", restore.Output, StringComparison.Ordinal);
        using var freshKek = LocalMasterKey.FromBase64(freshKey, "test");
        using var restored = Keyring.Load(Path.Combine(fresh, "keyring.json"), freshKek);
        var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => DecryptForSubjectAsync(fresh, restored, "p1", shredded));
        Assert.Equal(DecryptFailureReason.SubjectShredded, error.Reason);
    }

    [Fact]
    public async Task A_subject_key_store_pointed_at_the_data_database_stops_the_verb_with_exit_78_naming_the_setting()
    {
        var environment = Environment_();
        environment["Crypto__SubjectKeys__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}";

        var (exitCode, output) = await RunAsync(["keys", "init"], environment);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:SubjectKeys:ConnectionString points at the data database", output, StringComparison.Ordinal);
        Assert.False(File.Exists(KeyringPath));
    }

    [Fact]
    public async Task An_unknown_subject_key_store_provider_stops_the_verb_with_exit_78_naming_the_setting()
    {
        var environment = Environment_();
        environment["Crypto__SubjectKeys__Provider"] = "Oracle";

        var (exitCode, output) = await RunAsync(["keys", "init"], environment);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:SubjectKeys:Provider 'Oracle' is not supported. Use one of: Sqlite, PostgreSql, SqlServer.", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rewrap_moves_the_keyring_to_a_new_master_key()
    {
        Assert.Equal(0, (await RunAsync(["keys", "init"])).ExitCode);
        var newKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var environment = Environment_();
        environment["NEW_MASTER_KEY"] = newKey;

        var rewrap = await RunAsync(["keys", "rewrap", "--to-master-key-variable", "NEW_MASTER_KEY"], environment);

        Assert.Equal(0, rewrap.ExitCode);
        using var newKek = LocalMasterKey.FromBase64(newKey, "test");
        using var oldKek = LocalMasterKey.FromBase64(_masterKey, "test");
        using var loaded = Keyring.Load(KeyringPath, newKek);
        Assert.Throws<KeyManagementException>(() => Keyring.Load(KeyringPath, oldKek));
        Assert.Equal(78, (await RunAsync(["keys", "list"])).ExitCode); // the old master key no longer opens it
    }

    [Fact]
    public async Task Rotating_the_subjects_keyset_and_rewrapping_moves_subject_keys_to_the_new_version_and_leaves_fields_alone()
    {
        Assert.Equal(0, (await RunAsync(["keys", "init"])).ExitCode);
        Assert.Equal(0, (await RunAsync(["keys", "list"])).ExitCode);
        byte[] ciphertext;
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var keyring = Keyring.Load(KeyringPath, kek))
        {
            ciphertext = await EncryptForSubjectAsync(_directory, keyring, "p1", "kept through rotation");
        }

        var rotate = await RunAsync(["keys", "rotate", "--keyset", "subjects"]);
        var rewrap = await RunAsync(["reencrypt", "--subject-keys"]);

        Assert.Equal(0, rotate.ExitCode);
        Assert.Contains("1 data-subject key(s) rewrapped", rewrap.Output, StringComparison.Ordinal);
        using var rotatedKek = LocalMasterKey.FromBase64(_masterKey, "test");
        using var rotated = Keyring.Load(KeyringPath, rotatedKek);
        Assert.Equal((1u, 2u), (rotated.Get(Keyring.FieldsKeyset).PrimaryVersion, rotated.Get(Keyring.SubjectsKeyset).PrimaryVersion));
        var record = Assert.Single(await SubjectKeys(_directory, rotated).ExportAsync(TestContext.Current.CancellationToken));
        Assert.Equal(2u, FieldCiphertext.Inspect(record.WrappedKey).KeyVersion);
        Assert.Equal("kept through rotation", await DecryptForSubjectAsync(_directory, rotated, "p1", ciphertext));
    }

    [Fact]
    public async Task A_keyring_made_before_the_subjects_keyset_existed_gets_it_from_keys_rotate()
    {
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var keyring = Keyring.Of([KeysetBuilder.CreateNew(Keyring.FieldsKeyset).Build(), KeysetBuilder.CreateNew(Keyring.BlindIndexKeyset).Build()]))
        {
            keyring.Save(KeyringPath, kek);
        }

        var rotate = await RunAsync(["keys", "rotate", "--keyset", "subjects"]);

        Assert.Equal(0, rotate.ExitCode);
        Assert.Contains("Keyset 'subjects' added", rotate.Output, StringComparison.Ordinal);
        using var loadedKek = LocalMasterKey.FromBase64(_masterKey, "test");
        using var loaded = Keyring.Load(KeyringPath, loadedKek);
        Assert.Equal(1u, loaded.Get(Keyring.SubjectsKeyset).PrimaryVersion);
    }

    [Fact]
    public async Task After_a_data_backup_from_before_a_shred_is_restored_reapply_shreds_clears_its_blind_indexes_and_tombstone_again()
    {
        Assert.Equal(0, (await RunAsync(["keys", "init"])).ExitCode);
        Assert.Equal(0, (await RunAsync(["keys", "list"])).ExitCode);
        await ExecuteAsync(null, "CREATE TABLE people (id TEXT PRIMARY KEY, notes BLOB, email_bidx BLOB); INSERT INTO people VALUES ('p1', x'01', x'abcd'), ('p2', x'01', x'beef');");
        var backup = Path.Combine(_directory, "security-backup.db");
        await CopyDatabaseAsync(Path.Combine(_directory, "security.db"), backup);
        Assert.Equal(0, (await RunAsync(["keys", "shred", "--tenant", "acme", "--subject", "p1", "--purge", "people:id:email_bidx"])).ExitCode);

        await CopyDatabaseAsync(backup, Path.Combine(_directory, "security.db")); // the data database restored from before the shred
        Assert.Equal(0L, (long)(await ScalarAsync(null, "SELECT COUNT(*) FROM people WHERE email_bidx IS NULL"))!);
        var reapply = await RunAsync(["keys", "reapply-shreds", "--tenant", "acme", "--purge", "people:id:email_bidx"]);

        Assert.True(reapply.ExitCode == 0, reapply.Output);
        Assert.Contains("1 tombstone(s) copied back to the data database", reapply.Output, StringComparison.Ordinal);
        Assert.Contains("Blind indexes of tenant 'acme' cleared in 1 row(s)", reapply.Output, StringComparison.Ordinal);
        Assert.Equal("p1", (string?)await ScalarAsync(null, "SELECT id FROM people WHERE email_bidx IS NULL"));
        Assert.Equal("p1", (string?)await ScalarAsync(null, "SELECT subject_id FROM crypto_subject_tombstones"));
    }

    [Fact]
    public async Task Shred_destroys_the_subject_key_clears_its_blind_indexes_and_records_the_event()
    {
        Assert.Equal(0, (await RunAsync(["keys", "init"])).ExitCode);
        Assert.Equal(0, (await RunAsync(["keys", "list"])).ExitCode); // creates the module's tables in the database
        var database = $"Data Source={Path.Combine(_directory, "security.db")}";
        await using (var connection = new SqliteConnection(database))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var create = connection.CreateCommand();
            create.CommandText = "CREATE TABLE people (id TEXT PRIMARY KEY, notes BLOB, email_bidx BLOB); INSERT INTO people VALUES ('p1', x'01', x'abcd'), ('p2', x'01', x'beef');";
            await create.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        byte[] ciphertext;
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var keyring = Keyring.Load(KeyringPath, kek))
        {
            ciphertext = await EncryptForSubjectAsync(_directory, keyring, "p1", "to be forgotten");
        }

        var shred = await RunAsync(["keys", "shred", "--tenant", "acme", "--subject", "p1", "--actor", "dpo@acme", "--purge", "people:id:email_bidx"]);

        Assert.Equal(0, shred.ExitCode);
        using (var kek = LocalMasterKey.FromBase64(_masterKey, "test"))
        using (var keyring = Keyring.Load(KeyringPath, kek))
        {
            var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => DecryptForSubjectAsync(_directory, keyring, "p1", ciphertext));
            Assert.Equal(DecryptFailureReason.SubjectShredded, error.Reason);
        }

        await using (var connection = new SqliteConnection(database))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var query = connection.CreateCommand();
            query.CommandText = "SELECT id FROM people WHERE email_bidx IS NULL";
            Assert.Equal("p1", (string?)await query.ExecuteScalarAsync(TestContext.Current.CancellationToken));
        }

        var line = Assert.Single(await File.ReadAllLinesAsync(Path.Combine(_directory, "events.jsonl"), TestContext.Current.CancellationToken));
        Assert.Contains("\"action\":\"admin_change\"", line, StringComparison.Ordinal);
        Assert.Contains("\"privilege\":\"crypto_shred\"", line, StringComparison.Ordinal);
        Assert.Contains("\"user_id\":\"dpo@acme\"", line, StringComparison.Ordinal);
        Assert.Contains("\"record_id\":\"p1\"", line, StringComparison.Ordinal);
        await using (var connection = new SqliteConnection(database))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var query = connection.CreateCommand();
            query.CommandText = "SELECT subject_id FROM crypto_subject_tombstones";
            Assert.Equal("p1", (string?)await query.ExecuteScalarAsync(TestContext.Current.CancellationToken)); // where a key-store restore can see it
        }
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    public async Task Shred_purge_clears_only_the_subjects_rows_comparing_the_subject_as_its_column_type(string provider)
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var environment = Environment_();
        await using var postgres = provider == "PostgreSql" ? await PostgresDatabase.CreateAsync(cancellationToken: cancellationToken) : null;
        if (postgres is not null)
        {
            environment["Database__Provider"] = "PostgreSql";
            environment["Database__ConnectionString"] = postgres.ConnectionString;
        }

        Assert.Equal(0, (await RunAsync(["keys", "init"], environment)).ExitCode);
        var shredded = Guid.NewGuid();
        var kept = Guid.NewGuid();
        // EF Core keeps Guids as upper-case TEXT in SQLite and as uuid in PostgreSQL; the subject is given in lower case.
        var people = postgres is null ? "people" : "crm.people";
        await ExecuteAsync(postgres, postgres is null
            ? $"CREATE TABLE people (\"Id\" TEXT PRIMARY KEY, email_bidx BLOB); INSERT INTO people VALUES ('{shredded.ToString().ToUpperInvariant()}', x'01'), ('{kept.ToString().ToUpperInvariant()}', x'02');" +
              "CREATE TABLE leads (id INTEGER PRIMARY KEY, email_bidx BLOB); INSERT INTO leads VALUES (42, x'01'), (43, x'02');"
            : $"CREATE SCHEMA crm; CREATE TABLE crm.people (\"Id\" uuid PRIMARY KEY, email_bidx bytea); INSERT INTO crm.people VALUES ('{shredded}', '\\x01'), ('{kept}', '\\x02');" +
              "CREATE TABLE leads (id bigint PRIMARY KEY, email_bidx bytea); INSERT INTO leads VALUES (42, '\\x01'), (43, '\\x02');");

        var byUuid = await RunAsync(["keys", "shred", "--tenant", "acme", "--subject", shredded.ToString(), "--purge", $"{people}:Id:email_bidx"], environment);
        var byNumber = await RunAsync(["keys", "shred", "--tenant", "acme", "--subject", "42", "--purge", "leads:id:email_bidx"], environment);
        var wrongType = await RunAsync(["keys", "shred", "--tenant", "acme", "--subject", "p9", "--purge", "leads:id:email_bidx"], environment);
        var noColumn = await RunAsync(["keys", "shred", "--tenant", "acme", "--subject", "43", "--purge", "leads:nope:email_bidx"], environment);

        Assert.True(byUuid.ExitCode == 0, byUuid.Output);
        Assert.Contains("blind indexes cleared in 1 row(s)", byUuid.Output, StringComparison.Ordinal);
        Assert.Equal(0, byNumber.ExitCode);
        Assert.Contains("blind indexes cleared in 1 row(s)", byNumber.Output, StringComparison.Ordinal);
        Assert.Equal(64, wrongType.ExitCode);
        Assert.Contains("--subject 'p9' is not a whole number, but leads.id is an integer column.", wrongType.Output, StringComparison.Ordinal);
        Assert.Equal(64, noColumn.ExitCode);
        Assert.Contains("--purge: leads has no column nope", noColumn.Output, StringComparison.Ordinal);
        Assert.Equal(1L, Convert.ToInt64(await ScalarAsync(postgres, $"SELECT COUNT(*) FROM {people} WHERE email_bidx IS NULL"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(kept.ToString(), (await ScalarAsync(postgres, $"SELECT \"Id\" FROM {people} WHERE email_bidx IS NOT NULL"))!.ToString()!.ToLowerInvariant());
        Assert.Equal(43L, Convert.ToInt64(await ScalarAsync(postgres, "SELECT id FROM leads WHERE email_bidx IS NOT NULL"), System.Globalization.CultureInfo.InvariantCulture));
        // A refused purge is found out before anything is shredded.
        Assert.Equal(2L, Convert.ToInt64(await ScalarAsync(postgres, "SELECT COUNT(*) FROM crypto_subject_tombstones"), System.Globalization.CultureInfo.InvariantCulture));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    internal static Dictionary<string, string?> EnvironmentFor(string directory, string masterKey) => new()
    {
        ["Database__Provider"] = "Sqlite",
        ["Database__ConnectionString"] = $"Data Source={Path.Combine(directory, "security.db")}",
        ["Crypto__KeyringPath"] = Path.Combine(directory, "keyring.json"),
        ["Crypto__AccessEventLog"] = Path.Combine(directory, "events.jsonl"),
        ["CRM_SECURITY_MASTER_KEY"] = masterKey,
    };

    private async Task ExecuteAsync(PostgresDatabase? postgres, string sql)
    {
        await using var connection = Connection(postgres);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }

    private static async Task CopyDatabaseAsync(string from, string to)
    {
        await using var source = new SqliteConnection($"Data Source={from}");
        await using var target = new SqliteConnection($"Data Source={to}");
        await source.OpenAsync(TestContext.Current.CancellationToken);
        source.BackupDatabase(target);
    }

    private async Task<object?> ScalarAsync(PostgresDatabase? postgres, string sql)
    {
        await using var connection = Connection(postgres);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync(TestContext.Current.CancellationToken);
    }

    private System.Data.Common.DbConnection Connection(PostgresDatabase? postgres) => postgres is null
        ? new SqliteConnection($"Data Source={Path.Combine(_directory, "security.db")}")
        : new Npgsql.NpgsqlConnection(postgres.ConnectionString);

    // The subject-key store the verbs use: subject-keys.db beside the keyring (the default), tombstones in the data database.
    internal static SubjectKeyStore SubjectKeys(string directory, Keyring keyring) =>
        new(
            () => new SubjectKeyDbContext(new DbContextOptionsBuilder<SubjectKeyDbContext>().UseSqlite($"Data Source={Path.Combine(directory, "subject-keys.db")}").Options),
            keyring.Get(Keyring.SubjectsKeyset),
            new RecordingEventSink(),
            () => new CryptoDbContext(new DbContextOptionsBuilder<CryptoDbContext>().UseSqlite($"Data Source={Path.Combine(directory, "security.db")}").Options));

    internal static async Task<byte[]> EncryptForSubjectAsync(string directory, Keyring keyring, string subject, string value)
    {
        using var key = await SubjectKeys(directory, keyring).GetOrCreateAsync("acme", subject, TestContext.Current.CancellationToken);
        using var encryptor = key.CreateFieldEncryptor(new FieldContext("acme", "people", "notes"));
        return encryptor.EncryptString(value, subject);
    }

    internal static async Task<string> DecryptForSubjectAsync(string directory, Keyring keyring, string subject, byte[] ciphertext)
    {
        using var key = await SubjectKeys(directory, keyring).FindAsync("acme", subject, TestContext.Current.CancellationToken)
            ?? throw new FieldDecryptionException(DecryptFailureReason.WrongKeyset, "no key");
        using var encryptor = key.CreateFieldEncryptor(new FieldContext("acme", "people", "notes"));
        return encryptor.DecryptString(ciphertext, subject);
    }

    private Dictionary<string, string?> Environment_(string? directory = null, string? masterKey = null) => EnvironmentFor(directory ?? _directory, masterKey ?? _masterKey);

    private async Task<(int ExitCode, string Output)> RunAsync(IReadOnlyList<string> arguments, Dictionary<string, string?>? environment = null) =>
        await ServerProcess.RunVerbAsync(arguments, environment ?? Environment_(), _directory, TestContext.Current.CancellationToken);
}
