using System.Data;
using System.Data.Common;
using System.Globalization;
using Microsoft.Data.SqlClient;

namespace CrmSecurity.Crypto.Rotation;

/// <summary>A value a row handler wants replaced: which written column, the value it read (null for NULL) and the new value.</summary>
/// <param name="Column">Index into <see cref="CheckpointedTableScan.WriteColumns"/>.</param>
/// <param name="Old">The value read; the update only replaces it if it is still this (compare-and-set).</param>
/// <param name="New">The replacement.</param>
internal readonly record struct CellRewrite(int Column, object? Old, object New);

/// <summary>What a job does with each row a <see cref="CheckpointedTableScan"/> reads.</summary>
internal interface ITableRowHandler
{
    /// <summary>Looks at one row (values in the order of <see cref="CheckpointedTableScan.ReadColumns"/>) and adds the rewrites it wants.</summary>
    void Process(string rowId, object?[] values, List<CellRewrite> rewrites);

    /// <summary>Told after each rewrite's update: whether it replaced the value (false: the application changed it meanwhile).</summary>
    void Applied(CellRewrite rewrite, bool replaced);
}

/// <summary>
/// The machinery of the resumable, kill-safe table jobs (<c>reencrypt</c>, <c>blind-index recompute</c>): rows are read in
/// primary-key order in batches; each batch's updates and the checkpoint (last key done, in
/// <c>crypto_reencryption_checkpoints</c>) commit in one transaction, so after a crash the job resumes after the last
/// committed batch and nothing is half-written. A run then looks again at the rows before the point it resumed from
/// (all rows, for a job already finished), so its counts cover the whole table. Updates compare the old value, so a
/// value the application changed meanwhile is never overwritten. Without a job name it is a read-only scan that writes
/// no checkpoint (a dry run, when the handler asks for no rewrites).
/// </summary>
internal sealed class CheckpointedTableScan
{
    private readonly string _table;
    private readonly string _keyColumn;
    private readonly RowKeyKind _keyKind;
    private readonly int _batchSize;

    /// <summary>Creates the scan.</summary>
    /// <param name="table">The table.</param>
    /// <param name="keyColumn">Its single-column primary key.</param>
    /// <param name="keyKind">The key's type.</param>
    /// <param name="readColumns">The columns handed to the handler, in this order.</param>
    /// <param name="writeColumns">The columns a rewrite may replace.</param>
    /// <param name="batchSize">Rows per transaction.</param>
    public CheckpointedTableScan(string table, string keyColumn, RowKeyKind keyKind, IReadOnlyList<string> readColumns, IReadOnlyList<string> writeColumns, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _table = table;
        _keyColumn = keyColumn;
        _keyKind = keyKind;
        ReadColumns = readColumns;
        WriteColumns = writeColumns;
        _batchSize = batchSize;
    }

    /// <summary>The columns read, in the order the handler gets them.</summary>
    public IReadOnlyList<string> ReadColumns { get; }

    /// <summary>The columns a rewrite may replace.</summary>
    public IReadOnlyList<string> WriteColumns { get; }

    /// <summary>Test hook: called inside each batch's transaction before it commits (to simulate a crash there).</summary>
    public Action<int>? BeforeCommit { get; set; }

    /// <summary>Runs (or resumes) <paramref name="job"/> to the end of the table, then looks again at the rows an earlier run already did.</summary>
    /// <param name="connection">An open or closed connection to the database holding the table and the checkpoints.</param>
    /// <param name="job">The job's checkpoint name; null for a read-only scan of every row without a checkpoint.</param>
    /// <param name="handler">What to do with each row.</param>
    /// <param name="progress">Told after each batch: rows examined so far, rows in the table.</param>
    /// <param name="cancellationToken">Stops between batches (a batch in flight rolls back).</param>
    /// <returns>Rows examined (a resumed job counts the rows the interrupted run committed) and rows in the table.</returns>
    public async Task<(long RowsDone, long RowsTotal)> RunAsync(DbConnection connection, string? job, ITableRowHandler handler, Action<long, long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(handler);
        if (connection.State != ConnectionState.Open)
        {
            await connection.OpenAsync(cancellationToken);
        }

        var total = Convert.ToInt64(await ScalarAsync(connection, null, $"SELECT COUNT(*) FROM {Quote(_table)}", [], cancellationToken), CultureInfo.InvariantCulture);
        var (resumeKey, done, completed) = job is null ? (null, 0, false) : await ReadCheckpointAsync(connection, job, cancellationToken);
        var run = new Run(connection, handler, total, progress) { RowsDone = completed ? 0 : done };
        try
        {
            for (var i = 0; i < WriteColumns.Count; i++)
            {
                run.Updates.Add(UpdateCommand(connection, WriteColumns[i], oldIsNull: false));
                run.NullUpdates.Add(UpdateCommand(connection, WriteColumns[i], oldIsNull: true));
            }

            if (!completed)
            {
                await PassAsync(run, after: resumeKey, upTo: null, job, countRows: true, cancellationToken);
            }

            // The look-back: rows an earlier run committed are mostly done already, so this costs a read; it is what lets
            // the counts cover every value, including ones an interrupted run could not process. It writes no checkpoint:
            // killed here, the next run simply looks back again.
            if (completed || resumeKey is not null)
            {
                await PassAsync(run, after: null, upTo: completed ? null : resumeKey, job: null, countRows: completed, cancellationToken);
            }
        }
        finally
        {
            foreach (var update in run.Updates.Concat(run.NullUpdates))
            {
                await update.DisposeAsync();
            }
        }

        return (run.RowsDone, total);
    }

    /// <summary>The checkpoint of <paramref name="job"/>: last key done ("" = none), rows done, whether it finished.</summary>
    public static async Task<(object? LastKey, long Done, bool Completed)> ReadCheckpointAsync(DbConnection connection, string job, CancellationToken cancellationToken)
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

    // Rows after `after` (or from the first) up to `upTo` (or the last), in key order and in batches. With a job name,
    // each batch's updates commit together with the checkpoint and the job is marked completed at the end; without one,
    // a batch opens a transaction only when it has something to rewrite.
    private async Task PassAsync(Run run, object? after, object? upTo, string? job, bool countRows, CancellationToken cancellationToken)
    {
        var lastKey = after;
        var batchNumber = 0;
        var rewrites = new List<CellRewrite>();
        var keyed = new List<(object Key, CellRewrite Rewrite)>();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rows = await ReadBatchAsync(run.Connection, lastKey, upTo, cancellationToken);
            if (rows.Count == 0)
            {
                if (job is not null)
                {
                    await using var closing = await run.Connection.BeginTransactionAsync(cancellationToken);
                    await WriteCheckpointAsync(run.Connection, closing, job, lastKey, run.RowsDone, true, cancellationToken);
                    await closing.CommitAsync(cancellationToken);
                }

                return;
            }

            keyed.Clear();
            foreach (var (key, values) in rows)
            {
                rewrites.Clear();
                run.Handler.Process(RowId(key), values, rewrites);
                keyed.AddRange(rewrites.Select(r => (key, r)));
            }

            if (countRows)
            {
                run.RowsDone += rows.Count;
            }

            lastKey = rows[^1].Key;
            if (job is not null || keyed.Count > 0)
            {
                await using var transaction = await run.Connection.BeginTransactionAsync(cancellationToken);
                foreach (var (key, rewrite) in keyed)
                {
                    // Prepared once per column for the whole run: only the parameter values change. Only the value's own
                    // column is compared and set, so a NULL in another column never needs a parameter type of its own.
                    var update = rewrite.Old is null ? run.NullUpdates[rewrite.Column] : run.Updates[rewrite.Column];
                    update.Transaction = transaction;
                    SetValue(update.Parameters[0], rewrite.New);
                    update.Parameters[1].Value = key;
                    if (rewrite.Old is not null)
                    {
                        SetValue(update.Parameters[2], rewrite.Old);
                    }

                    run.Handler.Applied(rewrite, await update.ExecuteNonQueryAsync(cancellationToken) == 1);
                }

                if (job is not null)
                {
                    await WriteCheckpointAsync(run.Connection, transaction, job, lastKey, run.RowsDone, false, cancellationToken);
                    BeforeCommit?.Invoke(++batchNumber);
                }

                await transaction.CommitAsync(cancellationToken);
            }

            run.Progress?.Invoke(run.RowsDone, run.Total);
        }
    }

    // A text value is bound as text and a binary one as binary, so a string column keeps strings and the comparison
    // with the old value matches the column's type (PostgreSQL has no text = bytea).
    private static void SetValue(DbParameter parameter, object value)
    {
        parameter.DbType = value is string ? DbType.String : DbType.Binary;
        parameter.Value = value;
    }

    private string RowId(object key) => _keyKind switch
    {
        RowKeyKind.Number => Convert.ToInt64(key, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
        RowKeyKind.Uuid => (key is Guid guid ? guid : Guid.Parse((string)key)).ToString("D"),
        _ => Convert.ToString(key, CultureInfo.InvariantCulture)!,
    };

    private string SelectSql(bool after, bool upTo)
    {
        var columns = string.Join(", ", ReadColumns.Select(Quote));
        var conditions = new List<string>(2);
        if (after)
        {
            conditions.Add($"{Quote(_keyColumn)} > {{0}}");
        }

        if (upTo)
        {
            conditions.Add($"{Quote(_keyColumn)} <= {{{conditions.Count}}}");
        }

        var where = conditions.Count == 0 ? string.Empty : " WHERE " + string.Join(" AND ", conditions);
        return $"SELECT {Quote(_keyColumn)}, {columns} FROM {Quote(_table)}{where} ORDER BY {Quote(_keyColumn)}";
    }

    // UPDATE ... SET c = new WHERE key = k AND c = old (or c IS NULL): a value the application rewrote meanwhile is not overwritten.
    private DbCommand UpdateCommand(DbConnection connection, string column, bool oldIsNull) =>
        Command(
            connection,
            null,
            oldIsNull
                ? $"UPDATE {Quote(_table)} SET {Quote(column)} = {{0}} WHERE {Quote(_keyColumn)} = {{1}} AND {Quote(column)} IS NULL"
                : $"UPDATE {Quote(_table)} SET {Quote(column)} = {{0}} WHERE {Quote(_keyColumn)} = {{1}} AND {Quote(column)} = {{2}}",
            oldIsNull ? [Array.Empty<byte>(), string.Empty] : [Array.Empty<byte>(), string.Empty, Array.Empty<byte>()]);

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
            var values = new object?[ReadColumns.Count];
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
        string text when _keyKind == RowKeyKind.Uuid && !connection.GetType().Name.Contains("Sqlite", StringComparison.Ordinal) => Guid.Parse(text),
        string text when _keyKind == RowKeyKind.Number => long.Parse(text, CultureInfo.InvariantCulture),
        _ => key,
    };

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

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private sealed class Run(DbConnection connection, ITableRowHandler handler, long total, Action<long, long>? progress)
    {
        public DbConnection Connection { get; } = connection;

        public ITableRowHandler Handler { get; } = handler;

        public long Total { get; } = total;

        public Action<long, long>? Progress { get; } = progress;

        public List<DbCommand> Updates { get; } = [];

        public List<DbCommand> NullUpdates { get; } = [];

        public long RowsDone { get; set; }
    }
}
