using System.CommandLine;
using System.Globalization;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Rotation;
using CrmSecurity.Crypto.Service;
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
            Description = "A stored blind index, as INDEX_COLUMN:SOURCE_COLUMN[=CONTEXT_COLUMN]:NAME for an index of the blind-index registry or Crypto:Columns (e.g. email_bidx:email:email_eq: normaliser, transform and bits come from there), or INDEX_COLUMN:SOURCE_COLUMN[=CONTEXT_COLUMN]:NAME:NORMALISER:TRANSFORM:BITS for one declared only in code (for EF Core entities Email_bidx_email_eq:Email_encrypted=Email:email_eq:email:whole:20); repeatable.",
        };

        public IEnumerable<Option> All => [Tenant, KeyColumn, KeyType, Index];

        /// <summary>The table of <paramref name="specs"/> (definitions of named indexes from <paramref name="declared"/>), or an error naming the option to fix.</summary>
        public (BlindIndexTable? Table, string? Error) Read(ParseResult parse, string table, IEnumerable<string> specs, CryptoColumns declared)
        {
            var indexes = new List<BlindIndexColumn>();
            foreach (var spec in specs)
            {
                if (BlindIndexColumn.Parse(spec, table, declared, out var error) is not { } column)
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
        var command = new Command("blind-index", "The blind-index registry (define, rows, remove, list) and blind-index key rotation (recompute).");
        command.Add(Recompute(host));
        command.Add(Define(host));
        command.Add(Rows(host));
        command.Add(Remove(host));
        command.Add(List(host));
        return command;
    }

    private static Option<string> Required(string name, string description) => new(name) { Description = description, Required = true };

    private static Option<string?> ActorOption() => new("--actor") { Description = "Who makes the change (recorded in the audit event); defaults to the OS user." };

    private static RegistryActor Actor(ParseResult parse, Option<string?> option) => new(parse.GetValue(option) ?? Environment.UserName + "@cli", null, null);

    /// <summary><c>blind-index define</c>: the CLI twin of <c>PUT /crypto/v1/admin/blind-indexes/{table}/{column}/{name}</c>.</summary>
    private static Command Define(CryptoCliHost host)
    {
        var table = Required("--table", "The table (entity), as requests name it.");
        var column = Required("--column", "The encrypted column (field), as requests name it.");
        var name = Required("--name", "The index name callers will name (part of the index key's derivation).");
        var normaliser = Required("--normaliser", "email, phone-e164, national-id or exact.");
        var transform = new Option<string?>("--transform") { Description = "whole (default), lower-case, prefix-N or last-N." };
        var bits = new Option<int?>("--bits") { Description = "Bits kept (1 to 64); left out, the most the leakage planner allows beside the column's other indexes." };
        var rows = new Option<long?>("--expected-rows") { Description = "Rows the table is expected to hold per tenant: required for a column not in the registry yet." };
        var actor = ActorOption();
        var command = new Command("define", "Define a blind index in the server-side registry, checked by the leakage planner and audited; running services pick it up within seconds.")
        {
            table, column, name, normaliser, transform, bits, rows, actor,
        };
        command.SetAction((parse, cancellationToken) => KeyCommands.RunAsync(host, requireKeyring: false, async (services, _, token) =>
            await Report(await services.GetRequiredService<BlindIndexRegistry>().DefineAsync(
                parse.GetValue(table)!, parse.GetValue(column)!, parse.GetValue(name)!, parse.GetValue(normaliser), parse.GetValue(transform), parse.GetValue(bits), parse.GetValue(rows),
                Actor(parse, actor), services.GetRequiredService<CryptoColumns>(), services.GetRequiredService<ICryptoEventSink>(), token)), cancellationToken));
        return command;
    }

    /// <summary><c>blind-index rows</c>: the CLI twin of <c>PUT /crypto/v1/admin/blind-indexes/{table}/{column}</c>.</summary>
    private static Command Rows(CryptoCliHost host)
    {
        var table = Required("--table", "The table (entity).");
        var column = Required("--column", "The encrypted column (field).");
        var rows = new Option<long?>("--expected-rows") { Description = "Rows the table is expected to hold per tenant (at least 2).", Required = true };
        var actor = ActorOption();
        var command = new Command("rows", "Set the rows a registered column is expected to hold; its indexes are planned again (refused with the planner's reason).") { table, column, rows, actor };
        command.SetAction((parse, cancellationToken) => KeyCommands.RunAsync(host, requireKeyring: false, async (services, _, token) =>
            await Report(await services.GetRequiredService<BlindIndexRegistry>().SetRowsAsync(
                parse.GetValue(table)!, parse.GetValue(column)!, parse.GetValue(rows), Actor(parse, actor),
                services.GetRequiredService<CryptoColumns>(), services.GetRequiredService<ICryptoEventSink>(), token)), cancellationToken));
        return command;
    }

    /// <summary><c>blind-index remove</c>: the CLI twin of <c>DELETE /crypto/v1/admin/blind-indexes/{table}/{column}/{name}</c>.</summary>
    private static Command Remove(CryptoCliHost host)
    {
        var table = Required("--table", "The table (entity).");
        var column = Required("--column", "The encrypted column (field).");
        var name = Required("--name", "The index to remove.");
        var actor = ActorOption();
        var command = new Command("remove", "Remove a blind index from the registry (audited); lookups through it are refused from then on.") { table, column, name, actor };
        command.SetAction((parse, cancellationToken) => KeyCommands.RunAsync(host, requireKeyring: false, async (services, _, token) =>
            await Report(await services.GetRequiredService<BlindIndexRegistry>().RemoveAsync(
                parse.GetValue(table)!, parse.GetValue(column)!, parse.GetValue(name)!, Actor(parse, actor),
                services.GetRequiredService<CryptoColumns>(), services.GetRequiredService<ICryptoEventSink>(), token)), cancellationToken));
        return command;
    }

    /// <summary><c>blind-index list</c>: every column with blind indexes, from the registry and from <c>Crypto:Columns</c>, with the planner's verdict.</summary>
    private static Command List(CryptoCliHost host)
    {
        var command = new Command("list", "List the blind-index registry (and the indexes Crypto:Columns declares), with the leakage planner's verdict per column.");
        command.SetAction((parse, cancellationToken) => KeyCommands.RunAsync(host, requireKeyring: false, async (services, _, token) =>
        {
            var configured = services.GetRequiredService<CryptoColumns>();
            var lines = configured.ConfiguredWithIndexes.Select(c => (c.Table, c.Column, Source: "configuration", Rows: configured.ConfiguredRows(c.Table, c.Column),
                    Indexes: c.Indexes.Values.Select(i => (i.Name, Normaliser: i.Normaliser.Name, Transform: i.Transform.Name, i.Bits)).ToList(), Plan: c.Plan?.Explanation))
                .Concat((await services.GetRequiredService<BlindIndexRegistry>().ListAsync(token)).Select(c => (c.Table, c.Column, c.Source, Rows: c.ExpectedRows,
                    Indexes: c.Indexes.Select(i => (i.Name, i.Normaliser, i.Transform, i.Bits)).ToList(), Plan: c.Plan?.Explanation)))
                .OrderBy(c => c.Table, StringComparer.Ordinal).ThenBy(c => c.Column, StringComparer.Ordinal)
                .ToList();
            if (lines.Count == 0)
            {
                Console.WriteLine("No blind indexes are defined (registry empty, none in Crypto:Columns).");
            }

            foreach (var c in lines)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{c.Table}.{c.Column} ({c.Source}, {c.Rows} expected rows)"));
                foreach (var i in c.Indexes)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {i.Name}: {i.Normaliser}, {i.Transform}, {i.Bits} bits"));
                }

                if (c.Plan is not null)
                {
                    Console.WriteLine($"  plan: {c.Plan}");
                }
            }

            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }

    /// <summary>Prints what a registry change did; a refusal is the errors by field on stderr, exit 1 (64 for bad input).</summary>
    private static Task<int> Report(RegistryChange change)
    {
        if (change.Status is RegistryChange.Changed or RegistryChange.Unchanged)
        {
            var column = change.Column;
            var indexes = column is null ? "" : string.Join(", ", column.Indexes.Select(i => string.Create(CultureInfo.InvariantCulture, $"{i.Name} ({i.Normaliser}, {i.Transform}, {i.Bits} bits)")));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{(change.Status == RegistryChange.Changed ? "Changed" : "Unchanged")}: {column?.Table}.{column?.Column}, {column?.ExpectedRows} expected rows, indexes: {(indexes.Length == 0 ? "none" : indexes)}."));
            if (column?.Plan is { } plan)
            {
                Console.WriteLine($"plan: {plan.Explanation}");
            }

            return Task.FromResult(ExitCodes.Success);
        }

        foreach (var (field, messages) in change.Errors)
        {
            foreach (var message in messages)
            {
                Console.Error.WriteLine($"error: {field}: {message}");
            }
        }

        return Task.FromResult(change.Status == RegistryChange.Invalid && !change.Errors.Values.SelectMany(m => m).Any(m => m.StartsWith("refused by the leakage planner", StringComparison.Ordinal))
            ? ExitCodes.Usage
            : ExitCodes.Failure);
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

            var (table, error) = options.Read(parse, parse.GetValue(tableOption)!, specs, services.GetRequiredService<CryptoColumns>());
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
