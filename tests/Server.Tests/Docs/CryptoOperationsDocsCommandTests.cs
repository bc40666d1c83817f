using System.Globalization;
using System.Security.Cryptography;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// The command blocks of docs/crypto-operations.md that the Crypto tests run only as their own argument lists, run here
/// with bash as written, as the built executable: the end of a key version's life (rotate, re-encrypt, destroy) on a
/// keyring and a contacts table holding values under version 1, and the Always Encrypted keys with only a master key.
/// </summary>
public sealed class CryptoOperationsDocsCommandTests : IDisposable
{
    private readonly string _directory = DocCommands.TemporaryDirectory();
    private readonly string _masterKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private string Database => $"Data Source={Path.Combine(_directory, "security.db")}";

    private Dictionary<string, string?> Environment_ => new()
    {
        ["Database__Provider"] = "Sqlite",
        ["Database__ConnectionString"] = Database,
        ["Crypto__KeyringPath"] = Path.Combine(_directory, "keyring.json"),
        ["Crypto__AccessEventLog"] = Path.Combine(_directory, "events.jsonl"),
        ["CRM_SECURITY_MASTER_KEY"] = _masterKey,
    };

    [Fact]
    public async Task The_end_of_a_key_versions_life_runs_as_written_and_version_1_is_destroyed()
    {
        var (initialised, init) = await ServerProcess.RunVerbAsync(["keys", "init"], Environment_, _directory, Cancel);
        Assert.True(initialised == 0, init);
        await StoreContactsUnderVersion1Async();

        var (exit, output) = await DocCommands.RunAsync(DocCommands.Block("crypto-operations.md", "key-destroy-commands"), _directory, Environment_);

        Assert.True(exit == 0, output);
        var (listed, keys) = await ServerProcess.RunVerbAsync(["keys", "list"], Environment_, _directory, Cancel);
        Assert.True(listed == 0, keys);
        Assert.Contains("Destroyed", keys, StringComparison.Ordinal);
        // Every value was moved to version 2 before the destroy, so each one still opens.
        using var kek = LocalMasterKey.FromBase64(_masterKey, "test");
        using var keyring = Keyring.Load(Path.Combine(_directory, "keyring.json"), kek);
        using var email = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(new FieldContext("acme", "contacts", "email"));
        await using var connection = new SqliteConnection(Database);
        await connection.OpenAsync(Cancel);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT id, email FROM contacts ORDER BY id";
        await using var reader = await select.ExecuteReaderAsync(Cancel);
        while (await reader.ReadAsync(Cancel))
        {
            var id = reader.GetInt64(0).ToString(CultureInfo.InvariantCulture);
            Assert.Equal($"person{id}@example.org", email.DecryptString((byte[])reader[1], id));
        }
    }

    [Fact]
    public async Task The_always_encrypted_keys_are_made_as_written_with_only_the_master_key()
    {
        var (exit, output) = await DocCommands.RunAsync(DocCommands.Block("crypto-operations.md", "always-encrypted-commands"), _directory,
            new Dictionary<string, string?> { ["CRM_SECURITY_MASTER_KEY"] = _masterKey });

        Assert.True(exit == 0, output);
        Assert.Contains("CREATE COLUMN MASTER KEY [CRM_CMK]", output, StringComparison.Ordinal);
        Assert.Contains("KEY_STORE_PROVIDER_NAME = N'CRM_SECURITY_KEYRING'", output, StringComparison.Ordinal);
        Assert.Contains("CREATE COLUMN ENCRYPTION KEY [CEK_EMAIL]", output, StringComparison.Ordinal);
        Assert.Contains("CREATE COLUMN ENCRYPTION KEY [CEK_PHONE]", output, StringComparison.Ordinal);
    }

    /// <summary>Three contacts whose e-mail addresses are encrypted under the keyring's first version of <c>fields</c>.</summary>
    private async Task StoreContactsUnderVersion1Async()
    {
        await using (var connection = new SqliteConnection(Database))
        {
            await connection.OpenAsync(Cancel);
            await using var create = connection.CreateCommand();
            create.CommandText = "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email BLOB)";
            await create.ExecuteNonQueryAsync(Cancel);
            using var kek = LocalMasterKey.FromBase64(_masterKey, "test");
            using var keyring = Keyring.Load(Path.Combine(_directory, "keyring.json"), kek);
            using var email = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(new FieldContext("acme", "contacts", "email"));
            for (var id = 1; id <= 3; id++)
            {
                await using var insert = connection.CreateCommand();
                insert.CommandText = "INSERT INTO contacts (id, email) VALUES ($id, $email)";
                insert.Parameters.AddWithValue("$id", id);
                insert.Parameters.AddWithValue("$email", email.EncryptString($"person{id}@example.org", id.ToString(CultureInfo.InvariantCulture)));
                await insert.ExecuteNonQueryAsync(Cancel);
            }
        }

        SqliteConnection.ClearAllPools();
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
