using System.CommandLine;
using System.Globalization;
using CrmSecurity.Crypto.Hosting;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Subjects;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace CrmSecurity.Crypto.Cli;

/// <summary><c>keys init | list | rotate | usage | destroy | rewrap | shred | reapply-shreds | backup | restore | always-encrypted</c>.</summary>
internal static class KeyCommands
{
    public const string PassphraseVariable = "CRM_SECURITY_BACKUP_PASSPHRASE";

    public static Command Create(CryptoCliHost host)
    {
        var keys = new Command("keys", "Manage the keyring: data keys wrapped by the key-encryption key (master key or PKCS#11 token).");
        keys.Add(Init(host));
        keys.Add(List(host));
        keys.Add(Rotate(host));
        keys.Add(KeyUsageCommand.Create(host));
        keys.Add(KeyDestroyCommand.Create(host));
        keys.Add(Rewrap(host));
        keys.Add(Shred(host));
        keys.Add(ReapplyShreds(host));
        keys.Add(Backup(host));
        keys.Add(Restore(host));
        keys.Add(AlwaysEncryptedCommand.Create(host));
        return keys;
    }

    private static Command Init(CryptoCliHost host)
    {
        var command = new Command("init", "Create the keyring (fields, blind-index and subjects keysets) under the configured key-encryption key. With Pkcs11, the key is generated on the token when missing.");
        command.SetAction((parse, cancellationToken) => RunAsync(host, requireKeyring: false, (services, store, _) =>
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

    private static Command List(CryptoCliHost host)
    {
        var command = new Command("list", "List keysets and key versions (never key material).");
        command.SetAction((parse, cancellationToken) => RunAsync(host, requireKeyring: true, (_, store, _) =>
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
            foreach (var backup in KeyLifecycleLedger.Read(store.Path).Backups)
            {
                var taken = backup.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
                Console.WriteLine(backup.IsStale
                    ? $"backup {backup.Path} (taken {taken} UTC): STALE, it still holds destroyed key(s) ({string.Join("; ", backup.StaleBecause!)}); delete every copy"
                    : $"backup {backup.Path} (taken {taken} UTC)");
            }
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));
        return command;
    }

    private static Command Rotate(CryptoCliHost host)
    {
        var keysetOption = new Option<string>("--keyset") { Description = "Keyset to rotate.", DefaultValueFactory = _ => Keyring.FieldsKeyset };
        var stageOption = new Option<bool>("--stage") { Description = "Add the version without making it primary (promote later with another rotate)." };
        var command = new Command("rotate", "Add a key version and make it primary; the old primary becomes decrypt-only. Restart services, then run `reencrypt`. The blind-index keyset: --stage, `blind-index recompute`, then rotate.") { keysetOption, stageOption };
        command.SetAction((parse, cancellationToken) => RunAsync(host, requireKeyring: true, async (services, store, token) =>
        {
            using var keyring = store.Load();
            var name = parse.GetValue(keysetOption)!;
            if (name == Keyring.BlindIndexKeyset && !parse.GetValue(stageOption))
            {
                // Blind-index keys come from this keyset's primary: a new primary changes every index value the application
                // writes, so it is promoted only once the recompute job has put the stored indexes under it
                // (docs/crypto-operations.md). Staging is always allowed: lookups try every live version.
                var blind = keyring.Get(name);
                var pending = blind.Versions.FirstOrDefault(v => v.Status == KeyStatus.Active && !v.IsPrimary);
                if (pending is null)
                {
                    return await Fail(
                        "The blind-index keyset rotates in steps, so no stored index stops matching: stage a version (`keys rotate --keyset blind-index --stage`), " +
                        "run the `blind-index recompute` job for every table holding blind indexes, then run `keys rotate --keyset blind-index` again to promote it.",
                        ExitCodes.Usage);
                }

                if (await BlindIndexCommands.PromotionRefusalAsync(services.GetRequiredService<CryptoDbContext>(), blind.Id, pending.Version, token) is { } refusal)
                {
                    return await Fail($"The blind-index keyset's staged version {pending.Version} is not promoted: {refusal}.", ExitCodes.Usage);
                }
            }
            else if (name == Keyring.BlindIndexKeyset && keyring.Get(name).Versions.FirstOrDefault(v => v.Status == KeyStatus.Active && !v.IsPrimary) is { } already)
            {
                // One rotation at a time: the recompute job writes under the staged version, so a second one would strand it.
                return await Fail($"The blind-index keyset already has version {already.Version} staged: run `blind-index recompute` for every table holding blind indexes, then promote it with `keys rotate --keyset blind-index`.", ExitCodes.Usage);
            }

            if (name == Keyring.SubjectsKeyset && keyring.Keysets.All(k => k.Name != name))
            {
                // Keyrings made before subject keys moved beside the keyring have no subjects keyset: this adds it.
                using var added = keyring.With(KeysetBuilder.CreateNew(name, services.GetRequiredService<TimeProvider>()).Build());
                store.Save(added);
                Console.WriteLine($"Keyset '{name}' added (version 1, primary): it wraps data-subject keys.");
                return ExitCodes.Success;
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
            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }

    private static Command Rewrap(CryptoCliHost host)
    {
        var variableOption = new Option<string?>("--to-master-key-variable") { Description = "Environment variable holding the new base64 master key." };
        var fileOption = new Option<string?>("--to-master-key-file") { Description = "File holding the new master key." };
        var labelOption = new Option<string?>("--to-pkcs11-key-label") { Description = "Label of the new key on the configured PKCS#11 token (generated when missing)." };
        var command = new Command("rewrap", "Rewrap every data key under a new key-encryption key; then point Crypto:MasterKey (or Crypto:Pkcs11:KeyLabel) at it.") { variableOption, fileOption, labelOption };
        command.SetAction((parse, cancellationToken) => RunAsync(host, requireKeyring: true, (_, store, _) =>
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

    private static Command Shred(CryptoCliHost host)
    {
        var tenantOption = new Option<string>("--tenant") { Description = "Tenant of the data subject.", Required = true };
        var subjectOption = new Option<string>("--subject") { Description = "Data subject id (e.g. the contact id).", Required = true };
        var actorOption = ActorOption("Who asked for the shred (recorded in the access event); defaults to the OS user.");
        var purgeOption = PurgeOption();
        var command = new Command("shred", "Crypto-shred one data subject: destroy its key (every copy of its fields, backups included, becomes unreadable), clear its blind indexes, record the tombstone and the event.") { tenantOption, subjectOption, actorOption, purgeOption };
        command.SetAction((parse, cancellationToken) => RunAsync(host, requireKeyring: true, async (services, store, token) =>
        {
            var tenant = parse.GetValue(tenantOption)!;
            var subject = parse.GetValue(subjectOption)!;
            var actor = parse.GetValue(actorOption) ?? DefaultActor;
            if (ParsePurges(parse.GetValue(purgeOption)) is not { } purges)
            {
                return ExitCodes.Usage;
            }

            // Every purge is checked against the database (tables, columns, the subject's type) before the key is destroyed.
            if (await PreparePurgesAsync(services, purges, [subject], skipMismatched: false, token) is not { } statements)
            {
                return ExitCodes.Usage;
            }

            var encryption = services.GetRequiredService<Crypto.Fields.FieldEncryption>();
            var destroyed = await encryption.SubjectKeys!.ShredAsync(tenant, subject, actor, token);
            var cleared = await ExecutePurgesAsync(services, statements, token);
            Console.WriteLine(destroyed
                ? $"Shredded data subject '{subject}' of tenant '{tenant}': key destroyed, blind indexes cleared in {cleared} row(s), tombstone and event recorded."
                : $"Data subject '{subject}' of tenant '{tenant}' had no live key (tombstone recorded); blind indexes cleared in {cleared} row(s), event recorded.");
            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }

    private static Command ReapplyShreds(CryptoCliHost host)
    {
        var tenantOption = new Option<string?>("--tenant") { Description = "Tenant whose shredded subjects' blind indexes --purge clears (required with --purge)." };
        var actorOption = ActorOption("Who runs it (recorded in the access events); defaults to the OS user.");
        var purgeOption = PurgeOption();
        var logOption = ShredLogOption();
        var command = new Command(
            "reapply-shreds",
            "After restoring a backup (of the data or of the keys): destroy again every subject key shredded after that backup, and with --purge clear the blind indexes a restored data backup brought back. Idempotent.")
        {
            tenantOption, actorOption, purgeOption, logOption,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(host, requireKeyring: true, async (services, store, token) =>
        {
            if (ParsePurges(parse.GetValue(purgeOption)) is not { } purges)
            {
                return ExitCodes.Usage;
            }

            var tenant = parse.GetValue(tenantOption);
            if (purges.Count > 0 && tenant is null)
            {
                return await Fail("--purge needs --tenant: blind indexes are cleared for the shredded subjects of one tenant.", ExitCodes.Usage);
            }

            var keyStore = services.GetRequiredService<Crypto.Fields.FieldEncryption>().SubjectKeys!;
            if (await ReadShredLogsAsync(store, parse.GetValue(logOption) ?? [], token) is not { } logs)
            {
                return ExitCodes.Failure;
            }

            var result = await keyStore.ReapplyShredsAsync(logs.Shreds, parse.GetValue(actorOption) ?? DefaultActor, token);
            var cleared = 0;
            if (purges.Count > 0)
            {
                // Tombstones of subjects of another kind (an integer column, a non-numeric subject) are not this table's.
                var subjects = (await keyStore.ListShreddedAsync(tenant, token)).Select(s => s.SubjectId).ToList();
                if (await PreparePurgesAsync(services, purges, subjects, skipMismatched: true, token) is not { } statements)
                {
                    return ExitCodes.Usage;
                }

                cleared = await ExecutePurgesAsync(services, statements, token);
            }

            Console.WriteLine(Describe(result, logs.Description) + (purges.Count > 0 ? $" Blind indexes of tenant '{tenant}' cleared in {cleared} row(s)." : string.Empty));
            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }

    private static Command Backup(CryptoCliHost host)
    {
        var outOption = new Option<string>("--out") { Description = "Backup file to write.", Required = true };
        var passphraseOption = new Option<string>("--passphrase-variable") { Description = "Environment variable holding the backup passphrase (16+ characters).", DefaultValueFactory = _ => PassphraseVariable };
        var command = new Command(
            "backup",
            "Write an encrypted backup of the keys: the keyring and the subject-key store (PBKDF2-HMAC-SHA-256 passphrase -> AES-256-GCM); it restores on a machine without the original master key.")
        {
            outOption, passphraseOption,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(host, requireKeyring: true, async (services, store, token) =>
        {
            var passphrase = Environment.GetEnvironmentVariable(parse.GetValue(passphraseOption)!);
            if (string.IsNullOrEmpty(passphrase))
            {
                return await Fail($"The environment variable {parse.GetValue(passphraseOption)} holding the backup passphrase is not set.", ExitCodes.Usage);
            }

            var path = Path.GetFullPath(parse.GetValue(outOption)!);
            if (File.Exists(path))
            {
                return await Fail($"{path} exists; a backup never overwrites a file.");
            }

            var encryption = services.GetRequiredService<Crypto.Fields.FieldEncryption>();
            var subjectKeys = await encryption.SubjectKeys!.ExportAsync(token);
            var backup = KeyringBackup.Create(encryption.Keyring, subjectKeys, passphrase, services.GetRequiredService<TimeProvider>().GetUtcNow());
            var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // never readable by others, not even for a moment
            }

            await using (var file = new FileStream(path, fileOptions))
            {
                await file.WriteAsync(backup, token);
            }

            // Recorded so that destroying a key version later flags this backup stale (it would still hold that key).
            KeyLifecycleLedger.Read(store.Path).RecordBackup(path, services.GetRequiredService<TimeProvider>().GetUtcNow(), backup);

            var live = subjectKeys.Count(k => k.WrappedKey is not null);
            Console.WriteLine(
                $"Wrote encrypted backup {path}: {encryption.Keyring.Keysets.Count} keysets, {live} data-subject key(s) and {subjectKeys.Count - live} tombstone(s). Keep the passphrase apart from it. " +
                "A restore re-applies the shreds made after it (`keys restore`).");
            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }

    private static Command Restore(CryptoCliHost host)
    {
        var inOption = new Option<string>("--in") { Description = "Backup file to restore.", Required = true };
        var passphraseOption = new Option<string>("--passphrase-variable") { Description = "Environment variable holding the backup passphrase.", DefaultValueFactory = _ => PassphraseVariable };
        var forceOption = new Option<bool>("--force") { Description = "Replace an existing keyring." };
        var actorOption = ActorOption("Who restores (recorded in the access events of re-applied shreds); defaults to the OS user.");
        var logOption = ShredLogOption();
        var command = new Command(
            "restore",
            "Restore a backup of the keys: the keyring, wrapped under this machine's key-encryption key, and the subject-key store; then re-apply every shred recorded after the backup (data database tombstones, access-event log).")
        {
            inOption, passphraseOption, forceOption, actorOption, logOption,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(host, requireKeyring: false, async (services, store, token) =>
        {
            var passphrase = Environment.GetEnvironmentVariable(parse.GetValue(passphraseOption)!);
            if (string.IsNullOrEmpty(passphrase))
            {
                return await Fail($"The environment variable {parse.GetValue(passphraseOption)} holding the backup passphrase is not set.", ExitCodes.Usage);
            }

            if (store.Exists && !parse.GetValue(forceOption))
            {
                return await Fail($"The keyring {store.Path} exists; pass --force to replace it.");
            }

            if (await ReadShredLogsAsync(store, parse.GetValue(logOption) ?? [], token) is not { } logs)
            {
                return ExitCodes.Failure;
            }

            var contents = KeyringBackup.Open(await File.ReadAllBytesAsync(Path.GetFullPath(parse.GetValue(inOption)!), token), passphrase);
            using var keyring = contents.Keyring;
            if (keyring.Keysets.All(k => k.Name != Keyring.SubjectsKeyset))
            {
                if (contents.SubjectKeys.Count > 0)
                {
                    return await Fail("The backup holds data-subject keys but no 'subjects' keyset to unwrap them: it is damaged.");
                }

                // A keyring-only backup made before subject keys moved beside the keyring.
                using var completed = keyring.With(KeysetBuilder.CreateNew(Keyring.SubjectsKeyset, services.GetRequiredService<TimeProvider>()).Build());
                return await RestoreAsync(services, store, completed, contents, logs, parse.GetValue(actorOption) ?? DefaultActor, token);
            }

            return await RestoreAsync(services, store, keyring, contents, logs, parse.GetValue(actorOption) ?? DefaultActor, token);
        }, cancellationToken));
        return command;
    }

    private static async Task<int> RestoreAsync(IServiceProvider services, KeyringStore store, Keyring keyring, KeyringBackupContents contents, ShredLogs logs, string actor, CancellationToken cancellationToken)
    {
        var keyStore = new SubjectKeyStore(
            services.GetRequiredService<IDbContextFactory<SubjectKeyDbContext>>().CreateDbContext,
            keyring.Get(Keyring.SubjectsKeyset),
            services.GetRequiredService<Crypto.Events.ICryptoEventSink>(),
            services.GetRequiredService<IDbContextFactory<CryptoDbContext>>().CreateDbContext,
            services.GetRequiredService<TimeProvider>());
        SubjectKeyMerge merge;
        try
        {
            // Every backup key is checked to unwrap before anything is written.
            merge = await keyStore.MergeAsync(contents.SubjectKeys, cancellationToken);
        }
        catch (Crypto.Fields.FieldDecryptionException e)
        {
            return await Fail($"A data-subject key in the backup does not unwrap under the backup's own keyring ({e.Reason}): the backup is damaged. Nothing was restored.");
        }

        var ledger = KeyLifecycleLedger.Read(store.Path);
        if (ledger.FindBackup(contents.Content) is { IsStale: true } stale)
        {
            Console.Error.WriteLine($"warning: this backup is stale ({string.Join("; ", stale.StaleBecause!)}): the versions destroyed since are destroyed again in the restored keyring.");
        }

        var redestroyed = ReapplyDestroys(keyring, ledger.Destroyed.Select(d => (d.KeysetId, d.Version)).Concat(DestroyedIn(store)), out var restored);
        using (restored == keyring ? null : restored)
        {
            store.Save(restored);
        }

        if (redestroyed.Count > 0)
        {
            Console.WriteLine($"Destroyed again {redestroyed.Count} key version(s) destroyed after the backup was taken: {string.Join(", ", redestroyed)}.");
        }

        var result = await keyStore.ReapplyShredsAsync(logs.Shreds, actor, cancellationToken);
        var taken = contents.CreatedAt is { } at ? $"taken {at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC" : "of the keyring-only format";
        Console.WriteLine($"Restored the backup {taken}: {keyring.Keysets.Count} keysets into {store.Path} under key-encryption key {store.Kek.KeyId}; " +
            $"subject-key store: {merge.Added} record(s) added, {merge.AlreadyPresent} already there (kept).");
        Console.WriteLine(Describe(result, logs.Description));
        return ExitCodes.Success;
    }

    // Versions the keyring being replaced had destroyed (none when there is none, or it does not load under this KEK).
    private static IEnumerable<(uint KeysetId, uint Version)> DestroyedIn(KeyringStore store)
    {
        if (!store.Exists)
        {
            return [];
        }

        try
        {
            using var current = store.Load();
            return [.. current.Keysets.SelectMany(k => k.Versions.Where(v => v.Status == KeyStatus.Destroyed).Select(v => (k.Id, v.Version)))];
        }
        catch (KeyManagementException)
        {
            return [];
        }
    }

    /// <summary>
    /// A backup taken before a <c>keys destroy</c> still holds the destroyed key: restoring it must not bring the key
    /// back, so every version recorded destroyed (ledger, keyring being replaced) is destroyed again, as shreds are
    /// re-applied. A version that is the backup's primary cannot be, and is named on stderr.
    /// </summary>
    private static List<string> ReapplyDestroys(Keyring keyring, IEnumerable<(uint KeysetId, uint Version)> destroyed, out Keyring result)
    {
        var done = new List<string>();
        result = keyring;
        foreach (var group in destroyed.Distinct().GroupBy(d => d.KeysetId))
        {
            if (result.Keysets.FirstOrDefault(k => k.Id == group.Key) is not { } keyset)
            {
                continue;
            }

            var builder = KeysetBuilder.From(keyset);
            var changed = false;
            foreach (var (_, version) in group.OrderBy(d => d.Version))
            {
                if (keyset.Versions.FirstOrDefault(v => v.Version == version) is not { } info || info.Status == KeyStatus.Destroyed)
                {
                    continue;
                }

                if (info.IsPrimary)
                {
                    Console.Error.WriteLine($"warning: keyset '{keyset.Name}' version {version} was destroyed after this backup but is its primary; rotate, re-encrypt and destroy it again.");
                    continue;
                }

                builder.Destroy(version);
                changed = true;
                done.Add(string.Create(CultureInfo.InvariantCulture, $"{keyset.Name} v{version}"));
            }

            var next = result.With(builder.Build());
            if (!changed)
            {
                next.Dispose();
                continue;
            }

            if (result != keyring)
            {
                result.Dispose();
            }

            result = next;
        }

        return done;
    }

    private static string Describe(ShredReapplication result, string sources) =>
        $"Re-applied {result.Reapplied} shred(s) recorded after the backup: {result.KeysDestroyed} restored subject key(s) destroyed again, {result.TombstonesAdded} tombstone(s) added " +
        $"({result.Recorded} shredded subject(s) recorded in the data database's tombstones{sources}); {result.TombstonesRecordedInData} tombstone(s) copied back to the data database.";

    private const string DefaultActorSuffix = "@cli";

    private static string DefaultActor => Environment.UserName + DefaultActorSuffix;

    private static Option<string?> ActorOption(string description) => new("--actor") { Description = description };

    private static Option<string[]> PurgeOption() => new("--purge")
    {
        Description = "Blind-index columns to clear, as TABLE:SUBJECT_COLUMN:INDEX_COLUMN[,INDEX_COLUMN...] (TABLE may be schema.table); repeatable.",
        AllowMultipleArgumentsPerToken = false,
    };

    private static Option<string[]> ShredLogOption() => new("--shred-log")
    {
        Description = "Another access-event log (JSON Lines, e.g. exported from the audit trail) whose crypto_shred events are re-applied too; repeatable. Crypto:AccessEventLog is always read.",
        AllowMultipleArgumentsPerToken = false,
    };

    private static List<PurgeTarget>? ParsePurges(string[]? arguments)
    {
        var purges = new List<PurgeTarget>();
        foreach (var argument in arguments ?? [])
        {
            if (PurgeTarget.Parse(argument, out var error) is not { } target)
            {
                Console.Error.WriteLine($"error: {error}");
                return null;
            }

            purges.Add(target);
        }

        return purges;
    }

    // The statements, or null when a purge argument does not fit the database (the error is printed).
    private static async Task<List<(string Sql, IReadOnlyList<object> Values)>?> PreparePurgesAsync(
        IServiceProvider services, List<PurgeTarget> purges, List<string> subjects, bool skipMismatched, CancellationToken cancellationToken)
    {
        var statements = new List<(string, IReadOnlyList<object>)>();
        if (purges.Count == 0)
        {
            return statements;
        }

        var database = services.GetRequiredService<CryptoDbContext>().Database;
        try
        {
            var provider = SubjectPurge.ProviderOf(database.ProviderName);
            foreach (var purge in purges)
            {
                var kind = await SubjectPurge.CheckAsync(database.GetDbConnection(), provider, purge, cancellationToken);
                foreach (var subject in subjects)
                {
                    try
                    {
                        statements.Add(SubjectPurge.Statement(provider, purge, kind, subject));
                    }
                    catch (PurgeException) when (skipMismatched)
                    {
                    }
                }
            }

            return statements;
        }
        catch (PurgeException e)
        {
            await Fail(e.Message, ExitCodes.Usage);
            return null;
        }
    }

    private static async Task<int> ExecutePurgesAsync(IServiceProvider services, List<(string Sql, IReadOnlyList<object> Values)> statements, CancellationToken cancellationToken)
    {
        var connection = services.GetRequiredService<CryptoDbContext>().Database.GetDbConnection();
        var cleared = 0;
        foreach (var statement in statements)
        {
            cleared += await SubjectPurge.ExecuteAsync(connection, statement, cancellationToken);
        }

        return cleared;
    }

    private sealed record ShredLogs(IReadOnlyList<ShredRecord> Shreds, string Description);

    // The configured access-event log (when it exists) and every --shred-log file (which must exist).
    private static async Task<ShredLogs?> ReadShredLogsAsync(KeyringStore store, IReadOnlyList<string> extra, CancellationToken cancellationToken)
    {
        var shreds = new List<ShredRecord>();
        var description = new System.Text.StringBuilder();
        var configured = Path.GetFullPath(store.Options.AccessEventLog, Environment.CurrentDirectory);
        var files = (File.Exists(configured) ? new[] { configured } : []).Concat(extra.Select(e => Path.GetFullPath(e)));
        foreach (var file in files.Distinct(StringComparer.Ordinal))
        {
            if (!File.Exists(file))
            {
                await Fail($"--shred-log {file} does not exist.");
                return null;
            }

            var log = await ShredLog.ReadAsync(file, cancellationToken);
            shreds.AddRange(log.Shreds);
            description.Append(CultureInfo.InvariantCulture, $", {log.Shreds.Count} shred event(s) in {file}");
            if (log.UnreadableLines.Count > 0)
            {
                description.Append(CultureInfo.InvariantCulture, $" ({log.UnreadableLines.Count} unreadable line(s) skipped: {string.Join(", ", log.UnreadableLines.Take(10))})");
            }
        }

        return new ShredLogs(shreds, description.ToString());
    }

    internal static Task<int> RunAsync(CryptoCliHost host, bool requireKeyring, Func<IServiceProvider, KeyringStore, CancellationToken, Task<int>> verb, CancellationToken cancellationToken) =>
        host.Run(host.CreateBuilder(requireKeyring), async (services, token) =>
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
