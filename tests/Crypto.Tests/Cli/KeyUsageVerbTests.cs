using System.Text.RegularExpressions;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Crypto.Tests.Cli;

/// <summary><c>keys usage</c>, run as the real executable: stored values per key version, from the ciphertext headers.</summary>
public sealed class KeyUsageVerbTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-keys-usage-").FullName;
    private readonly string _masterKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private string Database => $"Data Source={Path.Combine(_directory, "security.db")}";

    [Fact]
    public async Task Usage_counts_the_values_of_each_key_version_in_both_stored_forms_and_names_what_is_not_ciphertext()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var environment = KeyVerbTests.EnvironmentFor(_directory, _masterKey);
        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "init"], environment, _directory, cancellationToken)).ExitCode);
        await ExecuteAsync("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email BLOB, phone TEXT)");

        // Version 1: three binary values and two cf1: texts (the service's form), one empty, one plain text left behind.
        await StoreAsync(1, 3, textRows: 2);
        await ExecuteAsync("INSERT INTO contacts (id, email, phone) VALUES (100, NULL, 'not encrypted')");
        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "rotate"], environment, _directory, cancellationToken)).ExitCode);
        // Version 2: two more binary values.
        await StoreAsync(10, 2, textRows: 0);

        var (exitCode, output) = await ServerProcess.RunVerbAsync(["keys", "usage", "--table", "contacts", "--column", "email", "--column", "phone"], environment, _directory, cancellationToken);

        Assert.True(exitCode == 0, output);
        Assert.Contains("keys usage contacts (email, phone): 12 values: 7 encrypted, 4 empty, 1 not ciphertext.", output, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"fields\W+1\W+DecryptOnly\W+5\b"), output);
        Assert.Matches(new Regex(@"fields\W+2\W+Active, primary\W+2\b"), output);
        Assert.Matches(new Regex(@"blind-index\W+1\W+Active, primary\W+0\b"), output);
    }

    [Fact]
    public async Task Usage_of_a_table_that_is_not_there_fails_naming_it()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var environment = KeyVerbTests.EnvironmentFor(_directory, _masterKey);
        Assert.Equal(0, (await ServerProcess.RunVerbAsync(["keys", "init"], environment, _directory, cancellationToken)).ExitCode);

        var (exitCode, output) = await ServerProcess.RunVerbAsync(["keys", "usage", "--table", "no_such_table", "--column", "email"], environment, _directory, cancellationToken);

        Assert.Equal(64, exitCode);
        Assert.Contains("cannot read no_such_table", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Rows <paramref name="first"/>.. with email under the keyring's primary version; the first <paramref name="textRows"/> also get a cf1: phone.</summary>
    private async Task StoreAsync(int first, int rows, int textRows)
    {
        using var kek = LocalMasterKey.FromBase64(_masterKey, "test");
        using var keyring = Keyring.Load(Path.Combine(_directory, "keyring.json"), kek);
        using var email = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(new FieldContext("acme", "contacts", "email"));
        using var phone = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(new FieldContext("acme", "contacts", "phone"));
        await using var connection = new SqliteConnection(Database);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        for (var i = 0; i < rows; i++)
        {
            var id = (first + i).ToString(System.Globalization.CultureInfo.InvariantCulture);
            await using var insert = connection.CreateCommand();
            insert.CommandText = "INSERT INTO contacts (id, email, phone) VALUES ($id, $email, $phone)";
            insert.Parameters.AddWithValue("$id", first + i);
            insert.Parameters.AddWithValue("$email", email.EncryptString($"person{id}@example.org", id));
            insert.Parameters.AddWithValue("$phone", i < textRows ? phone.EncryptText("+14155550100", id) : DBNull.Value);
            await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new SqliteConnection(Database);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }
}
