using System.Reflection;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.SqlServer;
using CrmSecurity.Crypto.Tests.Cli;
using CrmSecurity.Tests.Support;
using Microsoft.Data.SqlClient;
using Microsoft.Extensions.Logging.Abstractions;

namespace CrmSecurity.Crypto.Tests.Providers;

/// <summary>
/// SQL Server Always Encrypted, up to the wire: no SQL Server is reachable here, so these tests stop where SqlClient would
/// send or receive bytes. They go through SqlClient's own provider registry, the one a connection with
/// <c>Column Encryption Setting=Enabled</c> asks for the provider named in the column master key's metadata.
/// </summary>
public sealed partial class AlwaysEncryptedRegistrationTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-always-encrypted-").FullName;
    private readonly string _masterKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    [Fact]
    public async Task The_hosts_registration_puts_the_provider_in_SqlClients_registry_and_a_column_encryption_key_round_trips_through_it()
    {
        using var kek = LocalMasterKey.Generate();
        var registration = new AlwaysEncryptedRegistration(kek, NullLogger<AlwaysEncryptedRegistration>.Instance);
        await registration.StartAsync(TestContext.Current.CancellationToken);

        var provider = FromSqlClientRegistry(KeyringColumnMasterKeyStoreProvider.Name);
        var cek = RandomNumberGenerator.GetBytes(32);
        var encrypted = provider.EncryptColumnEncryptionKey(kek.KeyId, KeyringColumnMasterKeyStoreProvider.Algorithm, cek);

        // SQL Server stores the key path as written in the DDL; SqlClient hands it back as stored, in any case.
        Assert.Equal(cek, provider.DecryptColumnEncryptionKey(kek.KeyId.ToUpperInvariant(), "RSA_OAEP", encrypted));
        Assert.True(provider.VerifyColumnMasterKeyMetadata(kek.KeyId, false, provider.SignColumnMasterKeyMetadata(kek.KeyId, false)));

        // A stopped host's KEK is no longer resolved (it is about to be disposed): the key path names no key.
        await registration.StopAsync(TestContext.Current.CancellationToken);
        Assert.Throws<ArgumentException>(() => provider.DecryptColumnEncryptionKey(kek.KeyId, "RSA_OAEP", encrypted));
    }

    [Fact]
    public void The_documented_snippet_for_crm_apps_registers_their_key_beside_the_hosts()
    {
        using var kek = LocalMasterKey.FromBase64(_masterKey, "test");

        // docs/crypto-operations.md, "SQL Server Always Encrypted": what a CRM app on .NET runs once at start.
        var registered = KeyringColumnMasterKeyStoreProvider.Register(kek);

        Assert.True(registered);
        Assert.True(KeyringColumnMasterKeyStoreProvider.Register(kek), "a second call (the host's, or the app's again) is harmless");
        var provider = FromSqlClientRegistry(KeyringColumnMasterKeyStoreProvider.Name);
        var cek = RandomNumberGenerator.GetBytes(32);
        Assert.Equal(cek, provider.DecryptColumnEncryptionKey(kek.KeyId, "RSA_OAEP", new KeyringColumnMasterKeyStoreProvider(kek).EncryptColumnEncryptionKey(kek.KeyId, "RSA_OAEP", cek)));
    }

    [Fact]
    public async Task The_verb_prints_DDL_whose_encrypted_values_open_under_the_installations_key_through_SqlClients_registry()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var environment = KeyVerbTests.EnvironmentFor(_directory, _masterKey);

        var (exitCode, output) = await ServerProcess.RunVerbAsync(["keys", "always-encrypted", "--cmk", "CRM_CMK", "--cek", "CEK_EMAIL", "--cek", "CEK_PHONE"], environment, _directory, cancellationToken);

        Assert.True(exitCode == 0, output);
        using var kek = LocalMasterKey.FromBase64(_masterKey, "test");
        var master = MasterKeyDdl().Match(output);
        Assert.True(master.Success, output);
        Assert.Equal("CRM_CMK", master.Groups["name"].Value);
        Assert.Equal(KeyringColumnMasterKeyStoreProvider.Name, master.Groups["provider"].Value);
        Assert.Equal(kek.KeyId, master.Groups["path"].Value);

        KeyringColumnMasterKeyStoreProvider.Register(kek);
        var provider = FromSqlClientRegistry(KeyringColumnMasterKeyStoreProvider.Name);
        var keys = ColumnKeyDdl().Matches(output);
        Assert.Equal(["CEK_EMAIL", "CEK_PHONE"], keys.Select(k => k.Groups["name"].Value));
        var opened = new List<byte[]>();
        foreach (Match key in keys)
        {
            Assert.Equal("CRM_CMK", key.Groups["master"].Value);
            Assert.Equal("RSA_OAEP", key.Groups["algorithm"].Value);
            var encrypted = Convert.FromHexString(key.Groups["value"].Value);
            opened.Add(provider.DecryptColumnEncryptionKey(master.Groups["path"].Value, key.Groups["algorithm"].Value, encrypted));
        }

        Assert.All(opened, cek => Assert.Equal(32, cek.Length));
        Assert.NotEqual(opened[0], opened[1]);
    }

    [Fact]
    public async Task A_key_name_that_is_not_a_plain_identifier_is_refused()
    {
        var environment = KeyVerbTests.EnvironmentFor(_directory, _masterKey);

        var (exitCode, output) = await ServerProcess.RunVerbAsync(["keys", "always-encrypted", "--cek", "x]; DROP TABLE t; --"], environment, _directory, TestContext.Current.CancellationToken);

        Assert.Equal(64, exitCode);
        Assert.Contains("is not a plain SQL identifier", output, StringComparison.Ordinal);
        Assert.DoesNotContain("CREATE", output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>
    /// What SqlClient looks up when a result set's metadata names a key store provider (the registry behind
    /// <c>SqlConnection.RegisterColumnEncryptionKeyStoreProviders</c>); SqlClient exposes no public lookup, so through the
    /// internal method it uses itself.
    /// </summary>
    private static KeyringColumnMasterKeyStoreProvider FromSqlClientRegistry(string name)
    {
        var lookup = typeof(SqlConnection).GetMethod("TryGetColumnEncryptionKeyStoreProvider", BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new InvalidOperationException("Microsoft.Data.SqlClient no longer has SqlConnection.TryGetColumnEncryptionKeyStoreProvider: update this test to its registry.");
        using var connection = new SqlConnection();
        object?[] arguments = [name, null];
        Assert.True((bool)lookup.Invoke(connection, arguments)!, $"SqlClient's registry has no provider named {name}.");
        return Assert.IsType<KeyringColumnMasterKeyStoreProvider>(arguments[1]);
    }

    [GeneratedRegex(@"CREATE COLUMN MASTER KEY \[(?<name>\w+)\]\s+WITH \(\s+KEY_STORE_PROVIDER_NAME = N'(?<provider>[^']+)',\s+KEY_PATH = N'(?<path>[^']+)'\s+\);")]
    private static partial Regex MasterKeyDdl();

    [GeneratedRegex(@"CREATE COLUMN ENCRYPTION KEY \[(?<name>\w+)\]\s+WITH VALUES \(\s+COLUMN_MASTER_KEY = \[(?<master>\w+)\],\s+ALGORITHM = '(?<algorithm>[^']+)',\s+ENCRYPTED_VALUE = 0x(?<value>[0-9A-F]+)\s+\);")]
    private static partial Regex ColumnKeyDdl();
}
