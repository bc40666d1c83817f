using System.CommandLine;
using System.Globalization;
using CrmSecurity.Crypto.Hosting;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Subjects;
using CrmSecurity.Server.Hosting;
using Microsoft.EntityFrameworkCore;
using Spectre.Console;

namespace CrmSecurity.Server.Cli;

/// <summary><c>keys init | list | rotate | rewrap | shred | backup | restore</c>.</summary>
internal static class KeyCommands
{
    public const string PassphraseVariable = "CRM_SECURITY_BACKUP_PASSPHRASE";

    public static Command Create()
    {
        var keys = new Command("keys", "Manage the keyring: data keys wrapped by the key-encryption key (master key or PKCS#11 token).");
        keys.Add(Init());
        keys.Add(List());
        keys.Add(Rotate());
        keys.Add(Rewrap());
        keys.Add(Shred());
        keys.Add(Backup());
        keys.Add(Restore());
        return keys;
    }

    private static Command Init()
    {
        var command = new Command("init", "Create the keyring (fields and blind-index keysets) under the configured key-encryption key. With Pkcs11, the key is generated on the token when missing.");
        command.SetAction((parse, cancellationToken) => RunAsync(requireKeyring: false, (services, store, _) =>
        {
            if (store.Exists)
            {
                return Fail($"The keyring {store.Path} already exists; `keys init` never overwrites one. Use `keys rotate` for new versions.");
            }

            using var kek = KeyEncryptionKeys.Open(store.Options, createIfMissing: true);
            using var keyring = Keyring.CreateNew(services.GetRequiredService<TimeProvider>());
            keyring.Save(store.Path, kek);
            Console.WriteLine($"Created keyring {store.Path} under key-encryption key {kek.KeyId}.");
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List keysets and key versions (never key material).");
        command.SetAction((parse, cancellationToken) => RunAsync(requireKeyring: true, (_, store, _) =>
        {
            using var keyring = store.Load();
            var table = new Table().AddColumns("keyset", "id", "version", "status", "primary", "created (UTC)");
            foreach (var keyset in keyring.Keysets.OrderBy(k => k.Name, StringComparer.Ordinal))
            {
                foreach (var version in keyset.Versions)
                {
                    table.AddRow(
                        keyset.Name,
                        keyset.Id.ToString("x8", CultureInfo.InvariantCulture),
                        version.Version.ToString(CultureInfo.InvariantCulture),
                        version.Status.ToString(),
                        version.IsPrimary ? "yes" : "",
                        version.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture));
                }
            }

            Console.WriteLine($"Keyring {store.Path}, key-encryption key {store.Kek.KeyId}");
            Output().Write(table);
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return command;
    }

    private static Command Rotate()
    {
        var keysetOption = new Option<string>("--keyset") { Description = "Keyset to rotate.", DefaultValueFactory = _ => Keyring.FieldsKeyset };
        var stageOption = new Option<bool>("--stage") { Description = "Add the version without making it primary (promote later with another rotate)." };
        var command = new Command("rotate", "Add a key version and make it primary; the old primary becomes decrypt-only. Restart services, then run `reencrypt`.") { keysetOption, stageOption };
        command.SetAction((parse, cancellationToken) => RunAsync(requireKeyring: true, (services, store, _) =>
        {
            using var keyring = store.Load();
            var name = parse.GetValue(keysetOption)!;
            if (name == Keyring.BlindIndexKeyset)
            {
                // Blind-index keys come from this keyset's primary: a new primary changes every index value and lookups
                // would miss every existing row until all indexes are recomputed, which no verb does yet.
                return Fail("The blind-index keyset is not rotated by this build: every stored blind index would stop matching. Rotate 'fields' instead.", ExitCodes.Usage);
            }

            var builder = KeysetBuilder.From(keyring.Get(name), services.GetRequiredService<TimeProvider>());
            var staged = builder.Versions.FirstOrDefault(v => v.Status == KeyStatus.Active && !v.IsPrimary);
            uint version;
            if (staged is not null && !parse.GetValue(stageOption))
            {
                builder.SetPrimary(staged.Version); // promote the staged version
                version = staged.Version;
            }
            else
            {
                version = builder.AddVersion(makePrimary: !parse.GetValue(stageOption));
            }

            using var rotated = keyring.With(builder.Build());
            store.Save(rotated);
            Console.WriteLine(parse.GetValue(stageOption)
                ? $"Keyset '{name}': version {version} added (staged, not primary)."
                : $"Keyset '{name}': version {version} is now primary; older versions decrypt only.");
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return command;
    }

    private static Command Rewrap()
    {
        var variableOption = new Option<string?>("--to-master-key-variable") { Description = "Environment variable holding the new base64 master key." };
        var fileOption = new Option<string?>("--to-master-key-file") { Description = "File holding the new master key." };
        var labelOption = new Option<string?>("--to-pkcs11-key-label") { Description = "Label of the new key on the configured PKCS#11 token (generated when missing)." };
        var command = new Command("rewrap", "Rewrap every data key under a new key-encryption key; then point Crypto:MasterKey (or Crypto:Pkcs11:KeyLabel) at it.") { variableOption, fileOption, labelOption };
        command.SetAction((parse, cancellationToken) => RunAsync(requireKeyring: true, (_, store, _) =>
        {
            var targets = new[] { parse.GetValue(variableOption), parse.GetValue(fileOption), parse.GetValue(labelOption) }.Count(t => t is not null);
            if (targets != 1)
            {
                return Fail("Name exactly one new key-encryption key: --to-master-key-variable, --to-master-key-file or --to-pkcs11-key-label.", ExitCodes.Usage);
            }

            using var keyring = store.Load();
            var options = new CryptoOptions { Pkcs11 = store.Options.Pkcs11 };
            if (parse.GetValue(variableOption) is { } variable)
            {
                options.MasterKey = new MasterKeyOptions { Source = "Environment", Variable = variable };
            }
            else if (parse.GetValue(fileOption) is { } file)
            {
                options.MasterKey = new MasterKeyOptions { Source = "File", File = file };
            }
            else
            {
                options.MasterKey = new MasterKeyOptions { Source = "Pkcs11" };
                options.Pkcs11 = new Pkcs11Options { ModulePath = store.Options.Pkcs11.ModulePath, TokenLabel = store.Options.Pkcs11.TokenLabel, PinVariable = store.Options.Pkcs11.PinVariable, KeyLabel = parse.GetValue(labelOption)! };
            }

            using var newKek = KeyEncryptionKeys.Open(options, createIfMissing: options.MasterKey.Source == "Pkcs11");
            store.Save(keyring, newKek);
            Console.WriteLine($"Rewrapped {keyring.Keysets.Sum(k => k.Versions.Count)} key version(s) from {store.Kek.KeyId} to {newKek.KeyId}. Configure the new key-encryption key before the next start.");
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return command;
    }

    private static Command Shred()
    {
        var tenantOption = new Option<string>("--tenant") { Description = "Tenant of the data subject.", Required = true };
        var subjectOption = new Option<string>("--subject") { Description = "Data subject id (e.g. the contact id).", Required = true };
        var actorOption = new Option<string?>("--actor") { Description = "Who asked for the shred (recorded in the access event); defaults to the OS user." };
        var purgeOption = new Option<string[]>("--purge")
        {
            Description = "Blind-index columns to clear, as TABLE:SUBJECT_COLUMN:INDEX_COLUMN[,INDEX_COLUMN...] (TABLE may be schema.table); repeatable.",
            AllowMultipleArgumentsPerToken = false,
        };
        var command = new Command("shred", "Crypto-shred one data subject: destroy its key (every copy of its fields becomes unreadable), clear its blind indexes, record the event.") { tenantOption, subjectOption, actorOption, purgeOption };
        command.SetAction((parse, cancellationToken) => RunAsync(requireKeyring: true, async (services, store, token) =>
        {
            var tenant = parse.GetValue(tenantOption)!;
            var subject = parse.GetValue(subjectOption)!;
            var actor = parse.GetValue(actorOption) ?? Environment.UserName + "@cli";
            var purges = new List<PurgeTarget>();
            foreach (var argument in parse.GetValue(purgeOption) ?? [])
            {
                if (PurgeTarget.Parse(argument, out var error) is not { } target)
                {
                    return await Fail(error!, ExitCodes.Usage);
                }

                purges.Add(target);
            }

            // Every purge is checked against the database (tables, columns, the subject's type) before the key is destroyed.
            var database = services.GetRequiredService<CryptoDbContext>().Database;
            var statements = new List<(string Sql, IReadOnlyList<object> Values)>();
            try
            {
                foreach (var purge in purges)
                {
                    var provider = SubjectPurge.ProviderOf(database.ProviderName);
                    var kind = await SubjectPurge.CheckAsync(database.GetDbConnection(), provider, purge, token);
                    statements.Add(SubjectPurge.Statement(provider, purge, kind, subject));
                }
            }
            catch (PurgeException e)
            {
                return await Fail(e.Message, ExitCodes.Usage);
            }

            var encryption = services.GetRequiredService<Crypto.Fields.FieldEncryption>();
            var destroyed = await encryption.SubjectKeys!.ShredAsync(tenant, subject, actor, token);
            var cleared = 0;
            foreach (var statement in statements)
            {
                cleared += await SubjectPurge.ExecuteAsync(database.GetDbConnection(), statement, token);
            }

            Console.WriteLine(destroyed
                ? $"Shredded data subject '{subject}' of tenant '{tenant}': key destroyed, blind indexes cleared in {cleared} row(s), event recorded."
                : $"Data subject '{subject}' of tenant '{tenant}' had no live key (tombstone recorded); blind indexes cleared in {cleared} row(s), event recorded.");
            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }

    private static Command Backup()
    {
        var outOption = new Option<string>("--out") { Description = "Backup file to write.", Required = true };
        var passphraseOption = new Option<string>("--passphrase-variable") { Description = "Environment variable holding the backup passphrase (16+ characters).", DefaultValueFactory = _ => PassphraseVariable };
        var command = new Command("backup", "Write an encrypted backup of the keyring (PBKDF2-HMAC-SHA-256 passphrase -> AES-256-GCM); it restores on a machine without the original master key.") { outOption, passphraseOption };
        command.SetAction((parse, cancellationToken) => RunAsync(requireKeyring: true, (_, store, _) =>
        {
            var passphrase = Environment.GetEnvironmentVariable(parse.GetValue(passphraseOption)!);
            if (string.IsNullOrEmpty(passphrase))
            {
                return Fail($"The environment variable {parse.GetValue(passphraseOption)} holding the backup passphrase is not set.", ExitCodes.Usage);
            }

            using var keyring = store.Load();
            var path = Path.GetFullPath(parse.GetValue(outOption)!);
            if (File.Exists(path))
            {
                return Fail($"{path} exists; a backup never overwrites a file.");
            }

            File.WriteAllBytes(path, KeyringBackup.Create(keyring, passphrase));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            Console.WriteLine($"Wrote encrypted keyring backup {path} ({keyring.Keysets.Count} keysets). Keep the passphrase apart from it.");
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return command;
    }

    private static Command Restore()
    {
        var inOption = new Option<string>("--in") { Description = "Backup file to restore.", Required = true };
        var passphraseOption = new Option<string>("--passphrase-variable") { Description = "Environment variable holding the backup passphrase.", DefaultValueFactory = _ => PassphraseVariable };
        var forceOption = new Option<bool>("--force") { Description = "Replace an existing keyring." };
        var command = new Command("restore", "Restore a keyring backup, wrapping its keys under this machine's key-encryption key.") { inOption, passphraseOption, forceOption };
        command.SetAction((parse, cancellationToken) => RunAsync(requireKeyring: false, (_, store, _) =>
        {
            var passphrase = Environment.GetEnvironmentVariable(parse.GetValue(passphraseOption)!);
            if (string.IsNullOrEmpty(passphrase))
            {
                return Fail($"The environment variable {parse.GetValue(passphraseOption)} holding the backup passphrase is not set.", ExitCodes.Usage);
            }

            if (store.Exists && !parse.GetValue(forceOption))
            {
                return Fail($"The keyring {store.Path} exists; pass --force to replace it.");
            }

            using var keyring = KeyringBackup.Restore(File.ReadAllBytes(Path.GetFullPath(parse.GetValue(inOption)!)), passphrase);
            store.Save(keyring);
            Console.WriteLine($"Restored {keyring.Keysets.Count} keysets into {store.Path} under key-encryption key {store.Kek.KeyId}.");
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return command;
    }

    internal static Task<int> RunAsync(bool requireKeyring, Func<IServiceProvider, KeyringStore, CancellationToken, Task<int>> verb, CancellationToken cancellationToken) =>
        CliHost.RunAsync(CryptoModule.CreateVerbBuilder(requireKeyring), async (services, token) =>
        {
            try
            {
                return await verb(services, services.GetRequiredService<KeyringStore>(), token);
            }
            catch (KeyManagementException e)
            {
                return await Fail(e.Message);
            }
        }, cancellationToken);

    internal static Task<int> Fail(string message, int exitCode = ExitCodes.Failure)
    {
        Console.Error.WriteLine($"error: {message}");
        return Task.FromResult(exitCode);
    }

    internal static IAnsiConsole Output()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        if (Console.IsOutputRedirected)
        {
            console.Profile.Width = 160; // a pipe has no width; keep table rows on one line for scripts
        }

        return console;
    }
}
