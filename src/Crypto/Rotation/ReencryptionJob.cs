using System.Data.Common;
using System.Globalization;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;

namespace CrmSecurity.Crypto.Rotation;

/// <summary>How a table's primary key is typed, so the job can page through it and bind the row id the way it was bound on write.</summary>
internal enum RowKeyKind
{
    /// <summary>An integer key; row id = decimal text.</summary>
    Number = 1,

    /// <summary>A text key; row id = the text.</summary>
    Text = 2,

    /// <summary>A Guid key (uuid, or text as EF Core stores it in SQLite); row id = lower-case "D" form.</summary>
    Uuid = 3,
}

/// <summary>A column of encrypted values: the database column and the column name the ciphertexts are bound to.</summary>
/// <param name="DatabaseColumn">Column in the table (for EF Core entities <c>{Property}_encrypted</c>).</param>
/// <param name="ContextColumn">Column name in the <see cref="FieldContext"/> (for EF Core entities the property name).</param>
internal sealed record ReencryptionColumn(string DatabaseColumn, string ContextColumn);

/// <summary>What to re-encrypt: one table, its single-column primary key, and its encrypted columns.</summary>
/// <param name="Tenant">Tenant the values are bound to.</param>
/// <param name="Table">Table name (also the context's table name).</param>
/// <param name="KeyColumn">The primary key column.</param>
/// <param name="KeyKind">The key's type.</param>
/// <param name="Columns">The encrypted columns.</param>
internal sealed record ReencryptionTable(string Tenant, string Table, string KeyColumn, RowKeyKind KeyKind, IReadOnlyList<ReencryptionColumn> Columns)
{
    /// <summary>The job's name: table, columns and the target key version, so a later rotation starts a new job.</summary>
    internal string JobName(uint keysetId, uint version) =>
        string.Create(CultureInfo.InvariantCulture, $"{Tenant}/{Table}/{string.Join(',', Columns.Select(c => c.DatabaseColumn))}@{keysetId:x8}v{version}");
}

/// <summary>
/// Progress after each batch, and at the end the run's summary: every value the run looked at is counted under
/// exactly one outcome, so nothing is skipped without being reported.
/// </summary>
/// <param name="RowsDone">Rows examined so far. A run that resumes an interrupted job counts the rows that job committed as done; it looks at them again at the end, so its outcome counts cover the whole table.</param>
/// <param name="RowsTotal">Rows in the table when this run started.</param>
/// <param name="ValuesRewritten">Values re-encrypted under the primary version in this run (binary stays binary, text form stays text).</param>
/// <param name="ValuesFailed">Values in the binary or <c>cf1:</c> text form that could not be decrypted (left as they were) in this run: an error.</param>
internal sealed record ReencryptionProgress(long RowsDone, long RowsTotal, long ValuesRewritten, long ValuesFailed)
{
    /// <summary>Values already under the primary version (not decrypted), including values the application rewrote while the job ran.</summary>
    public long ValuesCurrent { get; init; }

    /// <summary>NULL or empty values: nothing to encrypt.</summary>
    public long ValuesEmpty { get; init; }

    /// <summary>Ciphertexts under another keyset than <c>fields</c> (data-subject keys): not this job's to rewrite, left as they are.</summary>
    public long ValuesOtherKeyset { get; init; }

    /// <summary>Values in neither the binary nor the <c>cf1:</c> text form (left as they were): an error, like <see cref="ValuesFailed"/>.</summary>
    public long ValuesNotCiphertext { get; init; }

    /// <summary>The first problems of the run (at most 100), each naming table, column and row key and never the value.</summary>
    public IReadOnlyList<string> Problems { get; init; } = [];
}

/// <summary>
/// Re-encrypts every value of a table's encrypted columns under the <c>fields</c> keyset's primary version, in
/// the form it is stored in: binary values (blob, bytea) stay binary, <c>cf1:</c> text-form values (string
/// columns, as the encryption service returns them) stay text, deterministic values stay deterministic.
/// Resumable and safe to kill at any moment: rows are read in primary-key order in batches; each batch's
/// updates and the checkpoint (last key done) commit in one transaction, so after a crash the job resumes
/// after the last committed batch and nothing is half-written. Every run then looks again at the rows before
/// the point it resumed from (all rows, for a job already finished), so its summary covers the whole table and
/// a value an interrupted run could not process is reported again rather than forgotten. Idempotent: a value
/// already under the primary version is counted without being decrypted; a value changed by the application
/// meanwhile is left alone (the update compares the old ciphertext). Values under other keysets (data-subject
/// keys) are not touched. Values that cannot be decrypted, or are no ciphertext at all, are left as they were
/// and reported with their table, column and row key.
/// </summary>
internal sealed class ReencryptionJob
{
    private readonly FieldEncryption _encryption;
    private readonly ReencryptionTable _table;
    private readonly CheckpointedTableScan _scan;

    /// <summary>Creates the job.</summary>
    /// <param name="encryption">The runtime whose <c>fields</c> primary version is the target.</param>
    /// <param name="table">What to re-encrypt.</param>
    /// <param name="batchSize">Rows per transaction.</param>
    public ReencryptionJob(FieldEncryption encryption, ReencryptionTable table, int batchSize = 1000)
    {
        ArgumentNullException.ThrowIfNull(encryption);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (table.Columns.Count == 0)
        {
            throw new ArgumentException("Name at least one encrypted column.", nameof(table));
        }

        _encryption = encryption;
        _table = table;
        var columns = table.Columns.Select(c => c.DatabaseColumn).ToList();
        _scan = new CheckpointedTableScan(table.Table, table.KeyColumn, table.KeyKind, columns, columns, batchSize);
    }

    /// <summary>Test hook: called inside each batch's transaction before it commits (to simulate a crash there).</summary>
    internal Action<int>? BeforeCommit
    {
        get => _scan.BeforeCommit;
        set => _scan.BeforeCommit = value;
    }

    /// <summary>Runs (or resumes) the job to the end of the table, then looks again at the rows an earlier run already did.</summary>
    /// <param name="connection">An open or closed connection to the database holding the table and <c>crypto_reencryption_checkpoints</c>.</param>
    /// <param name="progress">Told after each batch.</param>
    /// <param name="cancellationToken">Stops between batches (a batch in flight rolls back).</param>
    /// <returns>The run's summary: every value it looked at, counted by outcome.</returns>
    public async Task<ReencryptionProgress> RunAsync(DbConnection connection, IProgress<ReencryptionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var keyset = _encryption.Keyring.Get(Keyring.FieldsKeyset);
        var job = _table.JobName(keyset.Id, keyset.PrimaryVersion);
        var summary = new Summary();
        var handler = new Handler(
            this,
            keyset,
            _table.Columns.Select(c => _encryption.Encryptor(new FieldContext(_table.Tenant, _table.Table, c.ContextColumn))).ToArray(),
            _table.Columns.Select(c => _encryption.DeterministicEncryptor(new FieldContext(_table.Tenant, _table.Table, c.ContextColumn))).ToArray(),
            summary);
        var (done, total) = await _scan.RunAsync(
            connection,
            job,
            handler,
            progress is null ? null : (rows, all) =>
            {
                summary.RowsDone = rows;
                summary.Total = all;
                progress.Report(summary.Snapshot());
            },
            cancellationToken);
        summary.RowsDone = done;
        summary.Total = total;
        var result = summary.Snapshot();
        progress?.Report(result);
        return result;
    }

    // Counts the value under one outcome and returns its replacement (same form, same mode) when it is to be rewritten.
    private object? Process(Handler run, int column, object? stored, string rowId)
    {
        byte[] ciphertext;
        bool text;
        switch (stored)
        {
            case null or byte[] { Length: 0 } or string { Length: 0 }:
                run.Summary.Empty++;
                return null;
            case byte[] binary:
                ciphertext = binary;
                text = false;
                break;
            case string value when FieldText.IsCiphertext(value):
                try
                {
                    ciphertext = FieldText.Decode(value);
                }
                catch (FieldDecryptionException e)
                {
                    run.Summary.Fail(_table, column, rowId, e.Reason);
                    return null;
                }

                text = true;
                break;
            default:
                run.Summary.NotCiphertext(_table, column, rowId);
                return null;
        }

        FieldCiphertext info;
        try
        {
            info = FieldCiphertext.Inspect(ciphertext);
        }
        catch (FieldDecryptionException e)
        {
            if (text)
            {
                run.Summary.Fail(_table, column, rowId, e.Reason); // it carries the prefix, so it claims to be one
            }
            else
            {
                run.Summary.NotCiphertext(_table, column, rowId); // bytes without a field ciphertext header
            }

            return null;
        }

        if (info.KeysetId != run.Keyset.Id)
        {
            run.Summary.OtherKeyset++;
            return null;
        }

        if (info.KeyVersion == run.Keyset.PrimaryVersion)
        {
            run.Summary.Current++;
            return null;
        }

        byte[] rewritten;
        try
        {
            rewritten = info.Mode == EncryptionMode.Deterministic
                ? Reseal(run.Deterministic[column], ciphertext)
                : Reseal(run.Randomized[column], ciphertext, rowId);
        }
        catch (FieldDecryptionException e)
        {
            run.Summary.Fail(_table, column, rowId, e.Reason); // left as it was: never replaced by anything unreadable or partial
            return null;
        }

        // Counted as rewritten once the update has found the value unchanged.
        return text ? FieldText.Encode(rewritten) : rewritten;
    }

    private static byte[] Reseal(DeterministicFieldEncryptor encryptor, byte[] ciphertext)
    {
        var plaintext = encryptor.Decrypt(ciphertext);
        try
        {
            return encryptor.Encrypt(plaintext);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    private static byte[] Reseal(FieldEncryptor encryptor, byte[] ciphertext, string rowId)
    {
        var plaintext = encryptor.Decrypt(ciphertext, rowId);
        try
        {
            return encryptor.Encrypt(plaintext, rowId);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    // One run's view of the scan's rows: each value becomes one outcome and at most one rewrite of its own column.
    private sealed class Handler(
        ReencryptionJob job,
        Keyset keyset,
        FieldEncryptor[] randomized,
        DeterministicFieldEncryptor[] deterministic,
        Summary summary) : ITableRowHandler
    {
        public Keyset Keyset { get; } = keyset;

        public FieldEncryptor[] Randomized { get; } = randomized;

        public DeterministicFieldEncryptor[] Deterministic { get; } = deterministic;

        public Summary Summary { get; } = summary;

        public void Process(string rowId, object?[] values, List<CellRewrite> rewrites)
        {
            for (var i = 0; i < values.Length; i++)
            {
                if (job.Process(this, i, values[i], rowId) is { } replacement)
                {
                    rewrites.Add(new CellRewrite(i, values[i], replacement));
                }
            }
        }

        public void Applied(CellRewrite rewrite, bool replaced)
        {
            if (replaced)
            {
                Summary.Rewritten++;
            }
            else
            {
                Summary.Current++; // the application wrote it meanwhile, with the primary version it encrypts under
            }
        }
    }

    // One run's counts; every value examined adds one to exactly one of them.
    private sealed class Summary
    {
        private const int MaxProblemsListed = 100;
        private readonly List<string> _problems = [];

        public long RowsDone { get; set; }

        public long Total { get; set; }

        public long Rewritten { get; set; }

        public long Current { get; set; }

        public long Empty { get; set; }

        public long OtherKeyset { get; set; }

        private long Failed { get; set; }

        private long NotCiphertexts { get; set; }

        // Names where, never what: the value may be a plaintext that was never encrypted.
        public void Fail(ReencryptionTable table, int column, string rowId, DecryptFailureReason reason)
        {
            Failed++;
            Problem($"{table.Table}.{table.Columns[column].DatabaseColumn}, row {rowId}: could not be decrypted ({reason}); left unchanged");
        }

        public void NotCiphertext(ReencryptionTable table, int column, string rowId)
        {
            NotCiphertexts++;
            Problem($"{table.Table}.{table.Columns[column].DatabaseColumn}, row {rowId}: not a ciphertext (neither the binary form nor the {FieldText.Prefix} text form); left unchanged");
        }

        public ReencryptionProgress Snapshot() => new(RowsDone, Total, Rewritten, Failed)
        {
            ValuesCurrent = Current,
            ValuesEmpty = Empty,
            ValuesOtherKeyset = OtherKeyset,
            ValuesNotCiphertext = NotCiphertexts,
            Problems = [.. _problems],
        };

        private void Problem(string message)
        {
            if (_problems.Count < MaxProblemsListed)
            {
                _problems.Add(message);
            }
        }
    }
}
