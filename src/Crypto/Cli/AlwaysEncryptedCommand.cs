using System.CommandLine;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using CrmSecurity.Crypto.SqlServer;

namespace CrmSecurity.Crypto.Cli;

/// <summary>
/// <c>keys always-encrypted</c>: makes SQL Server Always Encrypted keys under the installation's KEK. The column master key
/// is the KEK itself (provider <see cref="KeyringColumnMasterKeyStoreProvider.Name"/>, key path = its key id); each column
/// encryption key is 32 fresh random bytes, encrypted by <see cref="KeyringColumnMasterKeyStoreProvider.EncryptColumnEncryptionKey"/>
/// and zeroed: it exists in clear nowhere but in SqlClient's memory after a connection opens it. Prints the
/// <c>CREATE COLUMN MASTER KEY</c> / <c>CREATE COLUMN ENCRYPTION KEY</c> DDL to run on the database.
/// </summary>
internal static partial class AlwaysEncryptedCommand
{
    public static Command Create(CryptoCliHost host)
    {
        var masterOption = new Option<string>("--cmk") { Description = "Name of the column master key in the database.", DefaultValueFactory = _ => "CRM_SECURITY_CMK" };
        var keyOption = new Option<string[]>("--cek") { Description = "Name of a column encryption key to create; repeatable.", Required = true };
        var command = new Command(
            "always-encrypted",
            "Create SQL Server Always Encrypted keys under the installation's key-encryption key and print their DDL (CREATE COLUMN MASTER KEY, CREATE COLUMN ENCRYPTION KEY).")
        {
            masterOption, keyOption,
        };
        command.SetAction((parse, cancellationToken) => KeyCommands.RunAsync(host, requireKeyring: false, async (_, store, _) =>
        {
            var master = parse.GetValue(masterOption)!;
            var keys = parse.GetValue(keyOption) ?? [];
            foreach (var name in keys.Prepend(master))
            {
                // The names go into DDL: only plain identifiers, so nothing typed here can change the statement.
                if (!Identifier().IsMatch(name))
                {
                    return await KeyCommands.Fail($"'{name}' is not a plain SQL identifier (letters, digits, _; at most 128; not starting with a digit).", ExitCodes.Usage);
                }
            }

            if (keys.Distinct(StringComparer.OrdinalIgnoreCase).Count() != keys.Length)
            {
                return await KeyCommands.Fail("--cek names a key twice.", ExitCodes.Usage);
            }

            var kek = store.Kek;
            var provider = new KeyringColumnMasterKeyStoreProvider(kek);
            Console.WriteLine($"-- SQL Server Always Encrypted keys under key-encryption key {kek.KeyId}. Register provider {KeyringColumnMasterKeyStoreProvider.Name} in every application that opens them (docs/crypto-operations.md).");
            Console.WriteLine($"CREATE COLUMN MASTER KEY [{master}]");
            Console.WriteLine("WITH (");
            Console.WriteLine($"    KEY_STORE_PROVIDER_NAME = N'{KeyringColumnMasterKeyStoreProvider.Name}',");
            Console.WriteLine($"    KEY_PATH = N'{kek.KeyId.Replace("'", "''", StringComparison.Ordinal)}'");
            Console.WriteLine(");");
            Console.WriteLine("GO");
            foreach (var name in keys)
            {
                var cek = RandomNumberGenerator.GetBytes(32); // AEAD_AES_256_CBC_HMAC_SHA_256 root key
                byte[] encrypted;
                try
                {
                    encrypted = provider.EncryptColumnEncryptionKey(kek.KeyId, KeyringColumnMasterKeyStoreProvider.Algorithm, cek);
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(cek);
                }

                Console.WriteLine($"CREATE COLUMN ENCRYPTION KEY [{name}]");
                Console.WriteLine("WITH VALUES (");
                Console.WriteLine($"    COLUMN_MASTER_KEY = [{master}],");
                Console.WriteLine($"    ALGORITHM = '{KeyringColumnMasterKeyStoreProvider.Algorithm}',");
                Console.WriteLine($"    ENCRYPTED_VALUE = 0x{Convert.ToHexString(encrypted)}");
                Console.WriteLine(");");
                Console.WriteLine("GO");
            }

            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    private static partial Regex Identifier();
}
