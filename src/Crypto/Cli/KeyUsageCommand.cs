using System.CommandLine;
using System.Data.Common;
using System.Globalization;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Rotation;
using CrmSecurity.Crypto.Service;
using CrmSecurity.Crypto.Subjects;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace CrmSecurity.Crypto.Cli;

/// <summary>
/// <c>keys usage</c>: how many stored values still use each key version, from a scan of a table's encrypted columns
/// (named as for <c>reencrypt</c>, binary or <c>cf1:</c> text form). Only the ciphertext headers are read (keyset id and
/// version, docs/crypto-formats.md §3 "Binary form"): no key is used and nothing is decrypted, so it runs with no keyring access beyond the
/// listing. A version with no value left is what a later destroy could remove.
/// </summary>
internal static class KeyUsageCommand
{
    public static Command Create(CryptoCliHost host)
    {
        var tableOption = new Option<string>("--table") { Description = "Table to scan.", Required = true };
        var columnOption = new Option<string[]>("--column")
        {
            Description = "Encrypted column, as DB_COLUMN or DB_COLUMN=CONTEXT_COLUMN (as for reencrypt); repeatable.",
        };
        var indexes = new BlindIndexCommands.TableOptions();
        var command = new Command(
            "usage",
            "Count the stored values of a table's encrypted columns per keyset version (reads ciphertext headers only; decrypts nothing), and with --index its stored blind indexes per blind-index version (decrypts the indexed values in memory to tell).")
        {
            tableOption, columnOption,
        };
        foreach (var option in indexes.All)
        {
            command.Add(option);
        }

        command.SetAction((parse, cancellationToken) => KeyCommands.RunAsync(host, requireKeyring: true, async (services, store, token) =>
        {
            var table = parse.GetValue(tableOption)!;
            var columns = (parse.GetValue(columnOption) ?? []).Select(c => c.Split('=', 2)[0]).Distinct(StringComparer.Ordinal).ToList();
            var specs = parse.GetValue(indexes.Index) ?? [];
            if (columns.Count == 0 && specs.Length == 0)
            {
                return await KeyCommands.Fail("keys usage needs at least one --column or --index.", ExitCodes.Usage);
            }

            using var keyring = store.Load();
            var connection = services.GetRequiredService<CryptoDbContext>().Database.GetDbConnection();
            var scan = new ScanResult([], 0, 0);
            if (columns.Count > 0)
            {
                try
                {
                    scan = await ScanAsync(connection, table, columns, token);
                }
                catch (DbException e)
                {
                    return await KeyCommands.Fail($"keys usage: cannot read {table} ({string.Join(", ", columns)}): {e.Message}", ExitCodes.Usage);
                }
            }

            var (usage, empty, notCiphertext) = scan;
            if (columns.Count > 0)
            {
                var total = usage.Values.Sum() + empty + notCiphertext;
                Console.WriteLine($"keys usage {table} ({string.Join(", ", columns)}): {total} values: {usage.Values.Sum()} encrypted, {empty} empty, {notCiphertext} not ciphertext.");
            }

            if (specs.Length > 0)
            {
                var (indexTable, error) = indexes.Read(parse, table, specs, services.GetRequiredService<CryptoColumns>());
                if (indexTable is null)
                {
                    return await KeyCommands.Fail(error!, ExitCodes.Usage);
                }

                var blind = await ScanIndexesAsync(services, indexTable, token);
                if (blind.Error is { } failure)
                {
                    return await KeyCommands.Fail(failure, ExitCodes.Usage);
                }

                var r = blind.Result!;
                var blindKeyset = keyring.Get(Keyring.BlindIndexKeyset);
                foreach (var (version, count) in r.FoundUnder)
                {
                    usage[(blindKeyset.Id, version)] = usage.GetValueOrDefault((blindKeyset.Id, version)) + count;
                }

                Console.WriteLine(
                    $"keys usage {table} (blind indexes {string.Join(", ", indexTable.Indexes.Select(i => i.IndexColumn))}): {r.FoundUnder.Values.Sum()} index values under a live version, " +
                    $"{r.Missing} missing, {r.Unmatched} matching no version, {r.Empty} without a value, {r.OtherKeyset} under another keyset, {r.Failed} could not be read.");
            }

            // Every version of every keyset, so a version no value uses shows 0; then what names no keyset of this keyring.
            var output = new Table().AddColumns("keyset", "version", "status", "values");
            foreach (var keyset in keyring.Keysets.OrderBy(k => k.Name, StringComparer.Ordinal))
            {
                foreach (var version in keyset.Versions)
                {
                    output.AddRow(keyset.Name, version.Version.ToString(CultureInfo.InvariantCulture),
                        version.Status + (version.IsPrimary ? ", primary" : ""), usage.GetValueOrDefault((keyset.Id, version.Version)).ToString(CultureInfo.InvariantCulture));
                }
            }

            var known = keyring.Keysets.SelectMany(k => k.Versions.Select(v => (k.Id, v.Version))).ToHashSet();
            foreach (var ((keysetId, version), count) in usage.Where(u => !known.Contains(u.Key)).OrderBy(u => u.Key))
            {
                output.AddRow($"unknown {keysetId.ToString("x8", CultureInfo.InvariantCulture)}", version.ToString(CultureInfo.InvariantCulture), "not in this keyring", count.ToString(CultureInfo.InvariantCulture));
            }

            KeyCommands.Output().Write(output);
            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }

    /// <summary>What a scan of a table's encrypted columns found: values per (keyset id, version), empty values, values in neither stored form.</summary>
    internal sealed record ScanResult(Dictionary<(uint KeysetId, uint Version), long> Usage, long Empty, long NotCiphertext);

    /// <summary>
    /// Counts the stored values of <paramref name="columns"/> of <paramref name="table"/> per keyset id and version, from the
    /// ciphertext headers only (nothing is decrypted). <c>keys usage</c> prints it; <c>keys destroy</c> refuses on it.
    /// </summary>
    /// <exception cref="DbException">The table or a column cannot be read.</exception>
    internal static async Task<ScanResult> ScanAsync(DbConnection connection, string table, IReadOnlyList<string> columns, CancellationToken cancellationToken)
    {
        var usage = new Dictionary<(uint KeysetId, uint Version), long>();
        long empty = 0, notCiphertext = 0;
        await connection.OpenAsync(cancellationToken);
        try
        {
            await using var command = connection.CreateCommand();
            command.CommandText = $"SELECT {string.Join(", ", columns.Select(Quote))} FROM {Quote(table)}";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                for (var i = 0; i < columns.Count; i++)
                {
                    switch (Header(reader.IsDBNull(i) ? null : reader.GetValue(i)))
                    {
                        case null:
                            empty++;
                            break;
                        case { } header when header.KeysetId == 0 && header.KeyVersion == 0:
                            notCiphertext++;
                            break;
                        case { } header:
                            usage[(header.KeysetId, header.KeyVersion)] = usage.GetValueOrDefault((header.KeysetId, header.KeyVersion)) + 1;
                            break;
                    }
                }
            }
        }
        finally
        {
            await connection.CloseAsync();
        }

        return new ScanResult(usage, empty, notCiphertext);
    }

    /// <summary>What a read-only scan of a table's stored blind indexes found, or why it could not read them.</summary>
    internal sealed record IndexScan(BlindIndexRecomputeProgress? Result, string? Error);

    /// <summary>
    /// Which <c>blind-index</c> version each stored index of <paramref name="table"/> is under: the recompute job run dry
    /// (nothing written, no checkpoint). <c>keys usage --index</c> prints it; <c>keys destroy --scan-index</c> refuses on it.
    /// </summary>
    internal static async Task<IndexScan> ScanIndexesAsync(IServiceProvider services, BlindIndexTable table, CancellationToken cancellationToken)
    {
        var connection = services.GetRequiredService<CryptoDbContext>().Database.GetDbConnection();
        try
        {
            var job = new BlindIndexRecomputeJob(services.GetRequiredService<FieldEncryption>(), table);
            return new IndexScan(await job.RunAsync(connection, dryRun: true, progress: null, cancellationToken), null);
        }
        catch (DbException e)
        {
            return new IndexScan(null, $"cannot read the blind indexes of {table.Table} ({string.Join(", ", table.Indexes.Select(i => i.IndexColumn))}): {e.Message}");
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    /// <summary>
    /// The value's keyset id and version; null for an empty value; (0, 0) for a value in neither stored form or with an
    /// unreadable header (a real keyset id is never 0 and versions start at 1).
    /// </summary>
    private static FieldCiphertext? Header(object? value)
    {
        try
        {
            return value switch
            {
                null or byte[] { Length: 0 } or string { Length: 0 } => null,
                byte[] binary => FieldCiphertext.Inspect(binary),
                string text when FieldText.IsCiphertext(text) => FieldCiphertext.Inspect(FieldText.Decode(text)),
                _ => default(FieldCiphertext),
            };
        }
        catch (FieldDecryptionException)
        {
            return default(FieldCiphertext);
        }
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
