using System.CommandLine;
using System.Data.Common;
using System.Globalization;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Rotation;
using CrmSecurity.Crypto.Service;
using CrmSecurity.Crypto.Subjects;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Crypto.Cli;

/// <summary>
/// <c>keys destroy</c>: the end of a key version's life. Its key material is dropped from the keyring (the version stays
/// listed as destroyed, so a value under it fails as "key version destroyed", not "unknown key"), backups taken before
/// are flagged stale in the lifecycle ledger, and an <c>admin_change</c> access event is written. Refused for the
/// primary version, and while any value still needs the version: values counted by a scan of the tables named with
/// <c>--scan</c> (as <c>keys usage</c> counts them), an unfinished <c>reencrypt</c> job of the keyset, or for the
/// <c>subjects</c> keyset data-subject keys still wrapped under it. <c>--force</c> overrides the usage check only after
/// the keyset name and version are typed back on standard input; with no input to read (CI), it refuses.
/// </summary>
internal static class KeyDestroyCommand
{
    public static Command Create(CryptoCliHost host)
    {
        var keysetOption = new Option<string>("--keyset") { Description = "Keyset of the version.", DefaultValueFactory = _ => Keyring.FieldsKeyset };
        var versionOption = new Option<uint>("--version") { Description = "The version to destroy.", Required = true };
        var scanOption = new Option<string[]>("--scan")
        {
            Description = "A table holding values of the keyset, as TABLE:COLUMN[,COLUMN...] (database columns, as for keys usage); repeatable. Required for the fields keyset unless --force.",
            AllowMultipleArgumentsPerToken = false,
        };
        var forceOption = new Option<bool>("--force") { Description = "Destroy even though values may still need the version; asks for the keyset name and version to be typed back." };
        var actorOption = new Option<string?>("--actor") { Description = "Who destroys it (recorded in the access event); defaults to the OS user." };
        var indexes = new BlindIndexCommands.TableOptions();
        var scanIndexOption = new Option<string?>("--scan-index")
        {
            Description = "For the blind-index keyset: the table whose stored blind indexes (named with --index, with --tenant) are checked, as keys usage --index checks them. Required for the blind-index keyset unless --force.",
        };
        var command = new Command(
            "destroy",
            "Destroy a key version for good: its key is dropped from the keyring, older backups are flagged stale. Refused while a scanned value, an unfinished reencrypt job or a subject key still needs it, unless --force with a typed confirmation.")
        {
            keysetOption, versionOption, scanOption, forceOption, actorOption, scanIndexOption,
        };
        foreach (var option in indexes.All)
        {
            command.Add(option);
        }

        command.SetAction((parse, cancellationToken) => KeyCommands.RunAsync(host, requireKeyring: true, async (services, store, token) =>
        {
            var name = parse.GetValue(keysetOption)!;
            var version = parse.GetValue(versionOption);
            var force = parse.GetValue(forceOption);
            using var keyring = store.Load();
            var keyset = keyring.Get(name);
            var info = keyset.Versions.FirstOrDefault(v => v.Version == version);
            if (info is null)
            {
                return await KeyCommands.Fail($"Keyset '{name}' has no version {version} (versions 1 to {keyset.Versions.Count}).", ExitCodes.Usage);
            }

            if (info.Status == KeyStatus.Destroyed)
            {
                Console.WriteLine($"Keyset '{name}' version {version} is already destroyed; nothing to do.");
                return ExitCodes.Success;
            }

            if (info.IsPrimary)
            {
                // New values are encrypted under the primary: destroying it would lose every value written from now on.
                return await KeyCommands.Fail($"Version {version} is the primary of keyset '{name}': rotate first (`keys rotate --keyset {name}`), re-encrypt, then destroy it.", ExitCodes.Usage);
            }

            BlindIndexTable? indexTable = null;
            if (parse.GetValue(scanIndexOption) is { Length: > 0 } indexed)
            {
                var (read, problem) = indexes.Read(parse, indexed, parse.GetValue(indexes.Index) ?? [], services.GetRequiredService<CryptoColumns>());
                if (read is null || read.Indexes.Count == 0)
                {
                    return await KeyCommands.Fail(problem ?? "--scan-index needs at least one --index.", ExitCodes.Usage);
                }

                indexTable = read;
            }

            var needs = await UsageAsync(services, keyset, version, parse.GetValue(scanOption) ?? [], indexTable, token);
            if (needs.Error is { } error)
            {
                return await KeyCommands.Fail(error, ExitCodes.Usage);
            }

            if (needs.Reasons.Count > 0 && !force)
            {
                return await KeyCommands.Fail(
                    $"Keyset '{name}' version {version} is still needed: {string.Join("; ", needs.Reasons)}. Move those values off it (`reencrypt`, or `blind-index recompute` for blind indexes) and scan again, or pass --force to lose them.",
                    ExitCodes.Failure);
            }

            if (force && !Confirmed(name, version))
            {
                return ExitCodes.Failure;
            }

            var time = services.GetRequiredService<TimeProvider>();
            using var changed = keyring.With(KeysetBuilder.From(keyset, time).Destroy(version).Build());
            store.Save(changed);
            var now = time.GetUtcNow();
            var stale = KeyLifecycleLedger.Read(store.Path).RecordDestroy(name, keyset.Id, version, now);
            var actor = parse.GetValue(actorOption) ?? Environment.UserName + "@cli";
            var forced = needs.Reasons.Count > 0 ? $"; forced while still needed: {string.Join("; ", needs.Reasons)}" : string.Empty;
            await services.GetRequiredService<ICryptoEventSink>().WriteAsync(
                new CryptoAccessEvent(now, actor, "admin_change", "success")
                {
                    Entity = "keyset",
                    RecordId = string.Create(CultureInfo.InvariantCulture, $"{name}/v{version}"),
                    Privilege = "key_destroy",
                    Details = string.Create(CultureInfo.InvariantCulture, $"key_destroy: keyset {name} ({keyset.Id:x8}) version {version} destroyed; {stale.Count} older backup(s) flagged stale{forced}"),
                },
                token);
            Console.WriteLine($"Keyset '{name}' version {version} destroyed: its key is gone from {store.Path}; values still under it can never be decrypted.");
            foreach (var backup in stale)
            {
                Console.WriteLine($"stale backup: {backup.Path} (taken {backup.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC) still holds the destroyed key: delete every copy of it.");
            }

            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }

    /// <summary>What still needs the version, or an error in the scan arguments.</summary>
    private sealed record Usage(IReadOnlyList<string> Reasons, string? Error = null);

    private static async Task<Usage> UsageAsync(IServiceProvider services, Keyset keyset, uint version, string[] scans, BlindIndexTable? indexTable, CancellationToken cancellationToken)
    {
        var reasons = new List<string>();
        var database = services.GetRequiredService<CryptoDbContext>();
        foreach (var scan in scans)
        {
            if (scan.Split(':', 2) is not [var table, var list] || table.Length == 0 || list.Split(',', StringSplitOptions.RemoveEmptyEntries) is not { Length: > 0 } columns)
            {
                return new Usage([], $"--scan {scan}: expected TABLE:COLUMN[,COLUMN...].");
            }

            KeyUsageCommand.ScanResult result;
            try
            {
                result = await KeyUsageCommand.ScanAsync(database.Database.GetDbConnection(), table, columns, cancellationToken);
            }
            catch (DbException e)
            {
                return new Usage([], $"--scan {scan}: cannot read {table} ({string.Join(", ", columns)}): {e.Message}");
            }

            if (result.Usage.GetValueOrDefault((keyset.Id, version)) is var count and > 0)
            {
                reasons.Add(string.Create(CultureInfo.InvariantCulture, $"{count} value(s) in {table} ({string.Join(", ", columns)})"));
            }
        }

        if (keyset.Name == Keyring.BlindIndexKeyset)
        {
            if (indexTable is not null)
            {
                var indexScan = await KeyUsageCommand.ScanIndexesAsync(services, indexTable, cancellationToken);
                if (indexScan.Error is { } error)
                {
                    return new Usage([], $"--scan-index {indexTable.Table}: {error}");
                }

                if (indexScan.Result!.FoundUnder.GetValueOrDefault(version) is var count and > 0)
                {
                    reasons.Add(string.Create(CultureInfo.InvariantCulture, $"{count} blind index value(s) in {indexTable.Table} ({string.Join(", ", indexTable.Indexes.Select(i => i.IndexColumn))}) are under it (run `blind-index recompute`)"));
                }
            }
            else
            {
                reasons.Add("no blind index was scanned, so nothing shows that no stored index needs it (name the table with --scan-index TABLE and its indexes with --index, with --tenant)");
            }
        }

        if (keyset.Name is Keyring.FieldsKeyset or Keyring.BlindIndexKeyset)
        {
            // A reencrypt (or blind-index recompute) job that has not finished is moving values off older versions right
            // now; its checkpoint says so (job name ...@KEYSETvVERSION, see ReencryptionTable.JobName, BlindIndexTable.JobName).
            var marker = string.Create(CultureInfo.InvariantCulture, $"@{keyset.Id:x8}v");
            var unfinished = await database.ReencryptionCheckpoints.AsNoTracking().Where(c => !c.Completed).Select(c => c.Job).ToListAsync(cancellationToken);
            foreach (var job in unfinished.Where(j => j.Contains(marker, StringComparison.Ordinal)))
            {
                reasons.Add(job.Contains(BlindIndexTable.JobMarker, StringComparison.Ordinal)
                    ? $"the blind-index recompute job {job} has not finished (run blind-index recompute again to finish it)"
                    : $"the reencrypt job {job} has not finished (run reencrypt again to finish it)");
            }

            if (keyset.Name == Keyring.FieldsKeyset && scans.Length == 0)
            {
                reasons.Add("no table was scanned, so nothing shows that no value needs it (name every table holding encrypted values with --scan TABLE:COLUMN[,COLUMN...])");
            }
        }

        if (keyset.Name == Keyring.SubjectsKeyset && services.GetRequiredService<FieldEncryption>().SubjectKeys is { } subjects)
        {
            // Data-subject keys are wrapped under this keyset: a wrapped key under the version would be lost with it.
            var wrapped = (await subjects.ExportAsync(cancellationToken)).Count(r => r.WrappedKey is { } key && WrappedUnder(key, keyset.Id, version));
            if (wrapped > 0)
            {
                reasons.Add(string.Create(CultureInfo.InvariantCulture, $"{wrapped} data-subject key(s) are wrapped under it (run `reencrypt --subject-keys`)"));
            }
        }

        return new Usage(reasons);
    }

    private static bool WrappedUnder(byte[] wrapped, uint keysetId, uint version)
    {
        try
        {
            var header = FieldCiphertext.Inspect(wrapped);
            return header.KeysetId == keysetId && header.KeyVersion == version;
        }
        catch (FieldDecryptionException)
        {
            return false;
        }
    }

    /// <summary>
    /// The typed confirmation of a forced destroy: the keyset name and version read back from standard input. No input to
    /// read (stdin closed or empty, as in CI) is a refusal, never a yes.
    /// </summary>
    private static bool Confirmed(string name, uint version)
    {
        var expected = string.Create(CultureInfo.InvariantCulture, $"{name} v{version}");
        Console.Error.Write($"Values may still need it; this cannot be undone. Type '{expected}' to destroy it: ");
        string? typed;
        try
        {
            typed = Console.In.ReadLine();
        }
        catch (IOException)
        {
            typed = null;
        }

        if (typed is null)
        {
            Console.Error.WriteLine();
            Console.Error.WriteLine("error: --force needs the confirmation typed on standard input, and there is none to read (no terminal). Nothing was destroyed.");
            return false;
        }

        if (!string.Equals(typed.Trim(), expected, StringComparison.Ordinal))
        {
            Console.Error.WriteLine($"error: the confirmation typed was not '{expected}'. Nothing was destroyed.");
            return false;
        }

        return true;
    }
}
