using System.CommandLine;
using System.Globalization;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Rotation;
using CrmSecurity.Crypto.Subjects;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Crypto.Cli;

/// <summary>
/// <c>blind-index recompute</c>: the job of a blind-index key rotation (docs/crypto-operations.md). Recomputes a table's
/// stored blind indexes under the staged (or primary) version of the <c>blind-index</c> keyset, resumable and kill-safe
/// like <c>reencrypt</c>; prints every index value it saw by the version it was under, and fails when any could not be
/// recomputed.
/// </summary>
internal static class BlindIndexCommands
{
    /// <summary>The options naming a table's stored indexes, shared by <c>blind-index recompute</c>, <c>keys usage</c> and <c>keys destroy</c>.</summary>
    internal sealed class TableOptions
    {
        public Option<string?> Tenant { get; } = new("--tenant") { Description = "Tenant the values are bound to (with --index)." };

        public Option<string> KeyColumn { get; } = new("--key-column") { Description = "The table's single-column primary key (with --index; randomized values are bound to it).", DefaultValueFactory = _ => "id" };

        public Option<RowKeyKind> KeyType { get; } = new("--key-type") { Description = "Key type: Number, Text or Uuid.", DefaultValueFactory = _ => RowKeyKind.Number };

        public Option<string[]> Index { get; } = new("--index")
        {
            Description = "A stored blind index, as INDEX_COLUMN:SOURCE_COLUMN[=CONTEXT_COLUMN]:NAME:NORMALISER:TRANSFORM:BITS (e.g. email_bidx:email:email_eq:email:whole:20; for EF Core entities Email_bidx_email_eq:Email_encrypted=Email:email_eq:email:whole:20); repeatable.",
        };

        public IEnumerable<Option> All => [Tenant, KeyColumn, KeyType, Index];

        /// <summary>The table of <paramref name="specs"/>, or an error naming the option to fix.</summary>
        public (BlindIndexTable? Table, string? Error) Read(ParseResult parse, string table, IEnumerable<string> specs)
        {
            var indexes = new List<BlindIndexColumn>();
            foreach (var spec in specs)
            {
                if (BlindIndexColumn.Parse(spec, out var error) is not { } column)
                {
                    return (null, $"--index {error}");
                }

                indexes.Add(column);
            }

            return parse.GetValue(Tenant) is not { Length: > 0 } tenant
                ? (null, "--index needs --tenant: the values are bound to a tenant.")
                : (new BlindIndexTable(tenant, table, parse.GetValue(KeyColumn)!, parse.GetValue(KeyType), indexes), null);
        }
    }

    public static Command Create(CryptoCliHost host)
    {
        var command = new Command("blind-index", "Blind-index key rotation: recompute stored indexes under a new key version.");
        command.Add(Recompute(host));
        return command;
    }

    private static Command Recompute(CryptoCliHost host)
    {
        var options = new TableOptions();
        var tableOption = new Option<string>("--table") { Description = "Table holding the indexes.", Required = true };
        var batchOption = new Option<int>("--batch") { Description = "Rows per transaction.", DefaultValueFactory = _ => 1000 };
        var command = new Command(
            "recompute",
            "Recompute a table's stored blind indexes under the staged version of the blind-index keyset (after `keys rotate --keyset blind-index --stage`; the primary when none is staged). Safe to stop or kill: run it again to resume.")
        {
            tableOption, batchOption,
        };
        foreach (var option in options.All)
        {
            command.Add(option);
        }

        command.SetAction((parse, cancellationToken) => KeyCommands.RunAsync(host, requireKeyring: true, async (services, _, token) =>
        {
            var specs = parse.GetValue(options.Index) ?? [];
            if (specs.Length == 0)
            {
                return await KeyCommands.Fail("blind-index recompute needs at least one --index.", ExitCodes.Usage);
            }

            var (table, error) = options.Read(parse, parse.GetValue(tableOption)!, specs);
            if (table is null)
            {
                return await KeyCommands.Fail(error!, ExitCodes.Usage);
            }

            var batch = parse.GetValue(batchOption);
            if (batch < 1)
            {
                return await KeyCommands.Fail("--batch must be at least 1.", ExitCodes.Usage);
            }

            var job = new BlindIndexRecomputeJob(services.GetRequiredService<FieldEncryption>(), table, batch);
            var connection = services.GetRequiredService<CryptoDbContext>().Database.GetDbConnection();
            BlindIndexRecomputeProgress r;
            try
            {
                r = await job.RunAsync(connection, dryRun: false, progress: null, token);
            }
            catch (System.Data.Common.DbException e)
            {
                return await KeyCommands.Fail($"blind-index recompute: cannot read or write {table.Table}: {e.Message}", ExitCodes.Usage);
            }

            // Every index value the run looked at is in exactly one of these counts.
            var found = string.Join(", ", r.FoundUnder.OrderBy(f => f.Key).Select(f => string.Create(CultureInfo.InvariantCulture, $"{f.Value} under version {f.Key}")));
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"blind-index recompute {table.Table} (job {job.JobName}): {r.RowsDone} rows; index values found: {(found.Length == 0 ? "none" : found)}; " +
                $"{r.Missing} missing, {r.Unmatched} matching no version, {r.Empty} without a value, {r.OtherKeyset} under another keyset (not touched), {r.Failed} failed; " +
                $"{r.Rewritten} written under version {r.TargetVersion}."));
            if (r.Failed == 0)
            {
                return ExitCodes.Success;
            }

            foreach (var problem in r.Problems)
            {
                Console.Error.WriteLine($"error: {problem}.");
            }

            return await KeyCommands.Fail($"{r.Failed} index value(s) could not be recomputed (listed above) and were left as they are; correct them and run blind-index recompute again.");
        }, cancellationToken));
        return command;
    }

    /// <summary>
    /// Whether the staged version of <paramref name="keysetId"/> may be promoted: a recompute job for it has finished and
    /// none is unfinished. Null when it may; otherwise why not, naming the job to run.
    /// </summary>
    internal static async Task<string?> PromotionRefusalAsync(CryptoDbContext database, uint keysetId, uint staged, CancellationToken cancellationToken)
    {
        var suffix = BlindIndexTable.JobSuffix(keysetId, staged);
        var jobs = (await database.ReencryptionCheckpoints.AsNoTracking().Select(c => new { c.Job, c.Completed }).ToListAsync(cancellationToken))
            .Where(c => c.Job.Contains(BlindIndexTable.JobMarker, StringComparison.Ordinal) && c.Job.EndsWith(suffix, StringComparison.Ordinal))
            .ToList();
        if (jobs.FirstOrDefault(j => !j.Completed) is { } unfinished)
        {
            return $"the blind-index recompute job {unfinished.Job} has not finished: run `blind-index recompute` again to finish it";
        }

        return jobs.Count == 0
            ? string.Create(CultureInfo.InvariantCulture, $"no `blind-index recompute` job has run for version {staged}: run it for every table holding blind indexes (`blind-index recompute --tenant T --table TABLE --index ...`), then rotate")
            : null;
    }
}
