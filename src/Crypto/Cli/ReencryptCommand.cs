using System.CommandLine;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Rotation;
using CrmSecurity.Crypto.Subjects;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace CrmSecurity.Crypto.Cli;

/// <summary>
/// <c>reencrypt</c>: rewrite a table's encrypted columns (binary or <c>cf1:</c> text form) under the primary key version, with a
/// progress bar; resumes where a killed run stopped. Prints a count of every value by outcome and fails when any could not be processed.
/// </summary>
internal static class ReencryptCommand
{
    public static Command Create(CryptoCliHost host)
    {
        var tenantOption = new Option<string?>("--tenant") { Description = "Tenant the values are bound to." };
        var tableOption = new Option<string?>("--table") { Description = "Table to re-encrypt." };
        var subjectKeysOption = new Option<bool>("--subject-keys") { Description = "Instead of a table: rewrap every data-subject key in the subject-key store under the primary version of the subjects keyset (after `keys rotate --keyset subjects`)." };
        var keyOption = new Option<string>("--key-column") { Description = "Its single-column primary key.", DefaultValueFactory = _ => "id" };
        var keyTypeOption = new Option<RowKeyKind>("--key-type") { Description = "Key type: Number, Text or Uuid.", DefaultValueFactory = _ => RowKeyKind.Number };
        var columnOption = new Option<string[]>("--column")
        {
            Description = "Encrypted column, as DB_COLUMN or DB_COLUMN=CONTEXT_COLUMN (for EF Core entities: Email_encrypted=Email); repeatable.",
        };
        var batchOption = new Option<int>("--batch") { Description = "Rows per transaction.", DefaultValueFactory = _ => 1000 };
        var command = new Command("reencrypt", "Re-encrypt a table's encrypted columns (binary or cf1: text form, each kept in its form) under the primary key version. Safe to stop or kill: run it again to resume.")
        {
            tenantOption, tableOption, keyOption, keyTypeOption, columnOption, batchOption, subjectKeysOption,
        };
        command.SetAction((parse, cancellationToken) => KeyCommands.RunAsync(host, requireKeyring: true, async (services, _, token) =>
        {
            if (parse.GetValue(subjectKeysOption))
            {
                var rewrapped = await services.GetRequiredService<FieldEncryption>().SubjectKeys!.RewrapAsync(token);
                Console.WriteLine($"reencrypt --subject-keys: {rewrapped} data-subject key(s) rewrapped under the primary version.");
                return ExitCodes.Success;
            }

            if (parse.GetValue(tenantOption) is null || parse.GetValue(tableOption) is null || (parse.GetValue(columnOption) ?? []).Length == 0)
            {
                return await KeyCommands.Fail("reencrypt needs --tenant, --table and at least one --column (or --subject-keys).", ExitCodes.Usage);
            }

            var columns = (parse.GetValue(columnOption) ?? []).Select(c => c.Split('=', 2) is [var db, var context] ? new ReencryptionColumn(db, context) : new ReencryptionColumn(c, c)).ToList();
            var batch = parse.GetValue(batchOption);
            if (batch < 1)
            {
                return await KeyCommands.Fail("--batch must be at least 1.", ExitCodes.Usage);
            }

            var table = new ReencryptionTable(parse.GetValue(tenantOption)!, parse.GetValue(tableOption)!, parse.GetValue(keyOption)!, parse.GetValue(keyTypeOption), columns);
            var job = new ReencryptionJob(services.GetRequiredService<FieldEncryption>(), table, batch);
            var connection = services.GetRequiredService<CryptoDbContext>().Database.GetDbConnection();
            ReencryptionProgress? result = null;
            var console = KeyCommands.Output();
            await console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async progress =>
                {
                    var task = progress.AddTask($"re-encrypting {table.Table}");
                    result = await job.RunAsync(
                        connection,
                        new SynchronousProgress(p =>
                        {
                            task.MaxValue = Math.Max(1, p.RowsTotal);
                            task.Value = Math.Min(p.RowsDone, task.MaxValue);
                        }),
                        token);
                    task.Value = task.MaxValue;
                });

            // Every value the run looked at is in exactly one of these counts, so the line adds up to the values seen.
            var r = result!;
            var values = r.ValuesRewritten + r.ValuesCurrent + r.ValuesEmpty + r.ValuesOtherKeyset + r.ValuesFailed + r.ValuesNotCiphertext;
            Console.WriteLine(
                $"reencrypt {table.Table}: {r.RowsDone} rows, {values} values: {r.ValuesRewritten} re-encrypted, {r.ValuesCurrent} already current, " +
                $"{r.ValuesEmpty} null or empty, {r.ValuesOtherKeyset} under another keyset (not touched), {r.ValuesFailed} could not be decrypted, " +
                $"{r.ValuesNotCiphertext} not a ciphertext.");
            var unprocessed = r.ValuesFailed + r.ValuesNotCiphertext;
            if (unprocessed == 0)
            {
                return ExitCodes.Success;
            }

            foreach (var problem in r.Problems)
            {
                Console.Error.WriteLine($"error: {problem}.");
            }

            if (unprocessed > r.Problems.Count)
            {
                Console.Error.WriteLine($"error: ... and {unprocessed - r.Problems.Count} more.");
            }

            return await KeyCommands.Fail(
                $"{unprocessed} value(s) could not be re-encrypted (listed above) and were left as they are; correct them, or restore the key version they need, and run reencrypt again.");
        }, cancellationToken));
        return command;
    }

    // Progress<T> posts to the thread pool; the bar and the final line must see every report in order.
    private sealed class SynchronousProgress(Action<ReencryptionProgress> report) : IProgress<ReencryptionProgress>
    {
        public void Report(ReencryptionProgress value) => report(value);
    }
}
