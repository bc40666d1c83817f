using System.Data;
using System.Data.Common;
using System.Globalization;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using Microsoft.Data.SqlClient;

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
    private readonly int _batchSize;

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
        _batchSize = batchSize;
    }

    /// <summary>Test hook: called inside each batch's transaction before it commits (to simulate a crash there).</summary>
    internal Action<int>? BeforeCommit { get; set; }

    /// <summary>Runs (or resumes) the job to the end of the table, then looks again at the rows an earlier run already did.</summary>
    /// <param name="connection">An open or closed connection to the database holding the table and <c>crypto_reencryption_checkpoints</c>.</param>
    /// <param name="progress">Told after each batch.</param>
    /// <param name="cancellationToken">Stops between batches (a batch in flight rolls back).</param>
    /// <returns>The run's summary: every value it looked at, counted by outcome.</returns>
    public async Task<ReencryptionProgress> RunAsync(DbConnection connection, IProgress<ReencryptionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (connection.State != ConnectionState.Open)
        {
            await connection.OpenAsync(cancellationToken);
        }

        var keyset = _encryption.Keyring.Get(Keyring.FieldsKeyset);
        var job = _table.JobName(keyset.Id, keyset.PrimaryVersion);
        var total = Convert.ToInt64(await ScalarAsync(connection, null, $"SELECT COUNT(*) FROM {Quote(_table.Table)}", [], cancellationToken), CultureInfo.InvariantCulture);
        var (resumeKey, done, completed) = await ReadCheckpointAsync(connection, job, cancellationToken);
        var summary = new Summary(total, completed ? 0 : done);
        var updates = new DbCommand[_table.Columns.Count];
        try
        {
            for (var i = 0; i < updates.Length; i++)
            {
                updates[i] = UpdateCommand(connection, _table.Columns[i]);
            }

            var run = new Run(
                connection,
                keyset,
                _table.Columns.Select(c => _encryption.Encryptor(new FieldContext(_table.Tenant, _table.Table, c.ContextColumn))).ToArray(),
                _table.Columns.Select(c => _encryption.DeterministicEncryptor(new FieldContext(_table.Tenant, _table.Table, c.ContextColumn))).ToArray(),
                updates,
                summary,
                progress);
            if (!completed)
            {
                await PassAsync(run, after: resumeKey, upTo: null, job, countRows: true, cancellationToken);
            }

            // The look-back: rows an earlier run committed are mostly current already, so this costs a read without
            // decryption; it is what lets the summary count every value, including ones an interrupted run could not
            // process. It writes no checkpoint: killed here, the next run simply looks back again.
            if (completed || resumeKey is not null)
            {
                await PassAsync(run, after: null, upTo: completed ? null : resumeKey, job: null, countRows: completed, cancellationToken);
            }
        }
        finally
        {
            foreach (var update in updates)
            {
                if (update is not null)
                {
                    await update.DisposeAsync();
                }
            }
        }

        var result = summary.Snapshot();
        progress?.Report(result);
        return result;
    }

    // Rows after `after` (or from the first) up to `upTo` (or the last), in key order and in batches. With a job name,
    // each batch's updates commit together with the checkpoint and the job is marked completed at the end; without one,
    // a batch opens a transaction only when it has something to rewrite.
    private async Task PassAsync(Run run, object? after, object? upTo, string? job, bool countRows, CancellationToken cancellationToken)
    {
        var lastKey = after;
        var batchNumber = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rows = await ReadBatchAsync(run.Connection, lastKey, upTo, cancellationToken);
            if (rows.Count == 0)
            {
                if (job is not null)
                {
                    await using var closing = await run.Connection.BeginTransactionAsync(cancellationToken);
                    await WriteCheckpointAsync(run.Connection, closing, job, lastKey, run.Summary.RowsDone, true, cancellationToken);
                    await closing.CommitAsync(cancellationToken);
                }

                return;
            }

            var rewrites = new List<(object Key, int Column, object Old, object New)>();
            foreach (var row in rows)
            {
                var rowId = RowId(row.Key);
                for (var i = 0; i < row.Values.Length; i++)
                {
                    if (Process(run, i, row.Values[i], rowId) is { } replacement)
                    {
                        rewrites.Add((row.Key, i, row.Values[i]!, replacement));
                    }
                }
            }

            if (countRows)
            {
                run.Summary.RowsDone += rows.Count;
            }

            lastKey = rows[^1].Key;
            if (job is not null || rewrites.Count > 0)
            {
                await using var transaction = await run.Connection.BeginTransactionAsync(cancellationToken);
                foreach (var (key, column, old, replacement) in rewrites)
                {
                    // Prepared once per column for the whole run: only the parameter values change. Only the value's own
                    // column is compared and set, so a NULL in another column never needs a parameter type of its own.
                    var update = run.Updates[column];
                    update.Transaction = transaction;
                    SetCiphertext(update.Parameters[0], replacement);
                    update.Parameters[1].Value = key;
                    SetCiphertext(update.Parameters[2], old);
                    if (await update.ExecuteNonQueryAsync(cancellationToken) == 1)
                    {
                        run.Summary.Rewritten++;
                    }
                    else
                    {
                        run.Summary.Current++; // the application wrote it meanwhile, with the primary version it encrypts under
                    }
                }

                if (job is not null)
                {
                    await WriteCheckpointAsync(run.Connection, transaction, job, lastKey, run.Summary.RowsDone, false, cancellationToken);
                    BeforeCommit?.Invoke(++batchNumber);
                }

                await transaction.CommitAsync(cancellationToken);
            }

            run.Progress?.Report(run.Summary.Snapshot());
        }
    }

    // Counts the value under one outcome and returns its replacement (same form, same mode) when it is to be rewritten.
    private object? Process(Run run, int column, object? stored, string rowId)
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

    // A text-form value is bound as text and a binary one as binary, so a string column keeps strings and the
    // comparison with the old value matches the column's type (PostgreSQL has no text = bytea).
    private static void SetCiphertext(DbParameter parameter, object value)
    {
        parameter.DbType = value is string ? DbType.String : DbType.Binary;
        parameter.Value = value;
    }

    private string RowId(object key) => _table.KeyKind switch
    {
        RowKeyKind.Number => Convert.ToInt64(key, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
        RowKeyKind.Uuid => (key is Guid guid ? guid : System.Guid.Parse((string)key)).ToString("D"),
        _ => Convert.ToString(key, CultureInfo.InvariantCulture)!,
    };

    private string SelectSql(bool after, bool upTo)
    {
        var columns = string.Join(", ", _table.Columns.Select(c => Quote(c.DatabaseColumn)));
        var conditions = new List<string>(2);
        if (after)
        {
            conditions.Add($"{Quote(_table.KeyColumn)} > {{0}}");
        }

        if (upTo)
        {
            conditions.Add($"{Quote(_table.KeyColumn)} <= {{{conditions.Count}}}");
        }

        var where = conditions.Count == 0 ? string.Empty : " WHERE " + string.Join(" AND ", conditions);
        return $"SELECT {Quote(_table.KeyColumn)}, {columns} FROM {Quote(_table.Table)}{where} ORDER BY {Quote(_table.KeyColumn)}";
    }

    // UPDATE ... SET c = new WHERE key = k AND c = old: a value the application rewrote meanwhile is not overwritten.
    private DbCommand UpdateCommand(DbConnection connection, ReencryptionColumn column) =>
        Command(
            connection,
            null,
            $"UPDATE {Quote(_table.Table)} SET {Quote(column.DatabaseColumn)} = {{0}} WHERE {Quote(_table.KeyColumn)} = {{1}} AND {Quote(column.DatabaseColumn)} = {{2}}",
            [Array.Empty<byte>(), string.Empty, Array.Empty<byte>()]);

    private async Task<List<(object Key, object?[] Values)>> ReadBatchAsync(DbConnection connection, object? lastKey, object? upTo, CancellationToken cancellationToken)
    {
        var select = SelectSql(after: lastKey is not null, upTo: upTo is not null);
        var sql = connection is SqlConnection
            ? select.Replace("SELECT ", $"SELECT TOP ({_batchSize}) ", StringComparison.Ordinal)
            : $"{select} LIMIT {_batchSize}";
        object?[] bounds = [.. lastKey is null ? [] : new[] { KeyParameter(connection, lastKey) }, .. upTo is null ? [] : new[] { KeyParameter(connection, upTo) }];
        await using var command = Command(connection, null, sql, bounds);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<(object, object?[])>(_batchSize);
        while (await reader.ReadAsync(cancellationToken))
        {
            var values = new object?[_table.Columns.Count];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = reader.IsDBNull(i + 1) ? null : reader.GetValue(i + 1);
            }

            rows.Add((reader.GetValue(0), values));
        }

        return rows;
    }

    private object KeyParameter(DbConnection connection, object key) => key switch
    {
        string text when _table.KeyKind == RowKeyKind.Uuid && !connection.GetType().Name.Contains("Sqlite", StringComparison.Ordinal) => System.Guid.Parse(text),
        string text when _table.KeyKind == RowKeyKind.Number => long.Parse(text, CultureInfo.InvariantCulture),
        _ => key,
    };

    private static async Task<(object? LastKey, long Done, bool Completed)> ReadCheckpointAsync(DbConnection connection, string job, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, null, "SELECT last_key, rows_done, completed FROM crypto_reencryption_checkpoints WHERE job = {0}", [job]);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return (null, 0, false);
        }

        var last = reader.IsDBNull(0) ? string.Empty : reader.GetString(0);
        return (last.Length == 0 ? null : last, reader.GetInt64(1), reader.GetBoolean(2));
    }

    private static async Task WriteCheckpointAsync(DbConnection connection, DbTransaction transaction, string job, object? lastKey, long done, bool completed, CancellationToken cancellationToken)
    {
        var key = lastKey is null ? string.Empty : Convert.ToString(lastKey, CultureInfo.InvariantCulture); // "" = no row done yet
        var now = DateTimeOffset.UtcNow;
        var updated = await ExecuteAsync(connection, transaction, "UPDATE crypto_reencryption_checkpoints SET last_key = {0}, rows_done = {1}, completed = {2}, updated_at = {3} WHERE job = {4}", [key, done, completed, now, job], cancellationToken);
        if (updated == 0)
        {
            await ExecuteAsync(connection, transaction, "INSERT INTO crypto_reencryption_checkpoints (job, last_key, rows_done, completed, updated_at) VALUES ({0}, {1}, {2}, {3}, {4})", [job, key, done, completed, now], cancellationToken);
        }
    }

    private static async Task<int> ExecuteAsync(DbConnection connection, DbTransaction? transaction, string sql, object?[] parameters, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<object?> ScalarAsync(DbConnection connection, DbTransaction? transaction, string sql, object?[] parameters, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        return await command.ExecuteScalarAsync(cancellationToken);
    }

    // {i} placeholders become parameters @p{i}: values never go into the SQL text.
    private static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, object?[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        var text = sql;
        for (var i = 0; i < parameters.Length; i++)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = "@p" + i.ToString(CultureInfo.InvariantCulture);
            parameter.Value = parameters[i] ?? DBNull.Value;
            if (parameters[i] is null)
            {
                parameter.DbType = DbType.Binary;
            }

            command.Parameters.Add(parameter);
            text = text.Replace("{" + i.ToString(CultureInfo.InvariantCulture) + "}", parameter.ParameterName, StringComparison.Ordinal);
        }

        command.CommandText = text;
        return command;
    }

    private sealed record Run(
        DbConnection Connection,
        Keyset Keyset,
        FieldEncryptor[] Randomized,
        DeterministicFieldEncryptor[] Deterministic,
        DbCommand[] Updates,
        Summary Summary,
        IProgress<ReencryptionProgress>? Progress);

    // One run's counts; every value examined adds one to exactly one of them.
    private sealed class Summary(long total, long rowsDone)
    {
        private const int MaxProblemsListed = 100;
        private readonly List<string> _problems = [];

        public long RowsDone { get; set; } = rowsDone;

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

        public ReencryptionProgress Snapshot() => new(RowsDone, total, Rewritten, Failed)
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

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
