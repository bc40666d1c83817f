using System.Data;
using System.Data.Common;
using System.Globalization;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using Microsoft.Data.SqlClient;

namespace CrmSecurity.Crypto.Rotation;

/// <summary>How a table's primary key is typed, so the job can page through it and bind the row id the way it was bound on write.</summary>
public enum RowKeyKind
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
public sealed record ReencryptionColumn(string DatabaseColumn, string ContextColumn);

/// <summary>What to re-encrypt: one table, its single-column primary key, and its encrypted columns.</summary>
/// <param name="Tenant">Tenant the values are bound to.</param>
/// <param name="Table">Table name (also the context's table name).</param>
/// <param name="KeyColumn">The primary key column.</param>
/// <param name="KeyKind">The key's type.</param>
/// <param name="Columns">The encrypted columns.</param>
public sealed record ReencryptionTable(string Tenant, string Table, string KeyColumn, RowKeyKind KeyKind, IReadOnlyList<ReencryptionColumn> Columns)
{
    /// <summary>The job's name: table, columns and the target key version, so a later rotation starts a new job.</summary>
    internal string JobName(uint keysetId, uint version) =>
        string.Create(CultureInfo.InvariantCulture, $"{Tenant}/{Table}/{string.Join(',', Columns.Select(c => c.DatabaseColumn))}@{keysetId:x8}v{version}");
}

/// <summary>Progress after each committed batch.</summary>
/// <param name="RowsDone">Rows examined so far (all runs of this job).</param>
/// <param name="RowsTotal">Rows in the table when this run started.</param>
/// <param name="ValuesRewritten">Values re-encrypted in this run.</param>
/// <param name="ValuesFailed">Values that could not be decrypted (left as they were) in this run.</param>
public sealed record ReencryptionProgress(long RowsDone, long RowsTotal, long ValuesRewritten, long ValuesFailed);

/// <summary>
/// Re-encrypts every value of a table's encrypted columns under the <c>fields</c> keyset's primary version.
/// Resumable and safe to kill at any moment: rows are read in primary-key order in batches; each batch's
/// updates and the checkpoint (last key done) commit in one transaction, so after a crash the job resumes
/// after the last committed batch and nothing is half-written. Idempotent: a value already under the primary
/// version is skipped without being decrypted; a value changed by the application meanwhile is left alone
/// (the update compares the old ciphertext). Values under other keysets (data-subject keys) are not touched.
/// </summary>
public sealed class ReencryptionJob
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

    /// <summary>Runs (or resumes) the job to the end of the table.</summary>
    /// <param name="connection">An open or closed connection to the database holding the table and <c>crypto_reencryption_checkpoints</c>.</param>
    /// <param name="progress">Told after each committed batch.</param>
    /// <param name="cancellationToken">Stops between batches (a batch in flight rolls back).</param>
    /// <returns>The final progress.</returns>
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
        var (lastKey, done, completed) = await ReadCheckpointAsync(connection, job, cancellationToken);
        long rewritten = 0, failed = 0;
        if (completed)
        {
            var finished = new ReencryptionProgress(done, total, 0, 0);
            progress?.Report(finished);
            return finished;
        }

        var randomized = _table.Columns.Select(c => _encryption.Encryptor(new FieldContext(_table.Tenant, _table.Table, c.ContextColumn))).ToArray();
        var deterministic = _table.Columns.Select(c => _encryption.DeterministicEncryptor(new FieldContext(_table.Tenant, _table.Table, c.ContextColumn))).ToArray();
        var selectFirst = SelectSql(after: false);
        var selectNext = SelectSql(after: true);
        // Ciphertext parameters are typed binary (null included); the key parameter's type comes from its value.
        object?[] placeholders = [.. Enumerable.Repeat<object?>(null, _table.Columns.Count), string.Empty, .. Enumerable.Repeat<object?>(null, _table.Columns.Count)];
        await using var update = Command(connection, null, UpdateSql(), placeholders);
        var batchNumber = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rows = await ReadBatchAsync(connection, lastKey is null ? selectFirst : selectNext, lastKey, cancellationToken);
            if (rows.Count == 0)
            {
                await using var closing = await connection.BeginTransactionAsync(cancellationToken);
                await WriteCheckpointAsync(connection, closing, job, lastKey, done, true, cancellationToken);
                await closing.CommitAsync(cancellationToken);
                break;
            }

            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            update.Transaction = transaction;
            foreach (var row in rows)
            {
                var rowId = RowId(row.Key);
                var changed = false;
                var values = new object?[_table.Columns.Count];
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = row.Values[i];
                    if (row.Values[i] is not byte[] ciphertext)
                    {
                        continue;
                    }

                    try
                    {
                        var info = FieldCiphertext.Inspect(ciphertext);
                        if (info.KeysetId != keyset.Id || info.KeyVersion == keyset.PrimaryVersion)
                        {
                            continue; // already current, or under a data-subject key
                        }

                        values[i] = info.Mode == EncryptionMode.Deterministic
                            ? deterministic[i].Encrypt(Decrypt(deterministic[i], ciphertext))
                            : Reseal(randomized[i], ciphertext, rowId);
                        changed = true;
                        rewritten++;
                    }
                    catch (FieldDecryptionException)
                    {
                        failed++; // left as it was: never replaced by anything unreadable or partial
                    }
                }

                if (changed)
                {
                    // One prepared statement for the whole run: only the parameter values change per row.
                    for (var i = 0; i < values.Length; i++)
                    {
                        update.Parameters[i].Value = values[i] ?? DBNull.Value;
                        update.Parameters[values.Length + 1 + i].Value = row.Values[i] ?? DBNull.Value;
                    }

                    update.Parameters[values.Length].Value = row.Key;
                    await update.ExecuteNonQueryAsync(cancellationToken);
                }
            }

            done += rows.Count;
            lastKey = rows[^1].Key;
            await WriteCheckpointAsync(connection, transaction, job, lastKey, done, false, cancellationToken);
            BeforeCommit?.Invoke(++batchNumber);
            await transaction.CommitAsync(cancellationToken);
            progress?.Report(new ReencryptionProgress(done, total, rewritten, failed));
        }

        var result = new ReencryptionProgress(done, total, rewritten, failed);
        progress?.Report(result);
        return result;
    }

    private static byte[] Decrypt(DeterministicFieldEncryptor encryptor, byte[] ciphertext) => encryptor.Decrypt(ciphertext);

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

    private string RowId(object key) => _table.KeyKind switch
    {
        RowKeyKind.Number => Convert.ToInt64(key, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
        RowKeyKind.Uuid => (key is Guid guid ? guid : System.Guid.Parse((string)key)).ToString("D"),
        _ => Convert.ToString(key, CultureInfo.InvariantCulture)!,
    };

    private string SelectSql(bool after)
    {
        var columns = string.Join(", ", _table.Columns.Select(c => Quote(c.DatabaseColumn)));
        var where = after ? $" WHERE {Quote(_table.KeyColumn)} > {{0}}" : string.Empty;
        return $"SELECT {Quote(_table.KeyColumn)}, {columns} FROM {Quote(_table.Table)}{where} ORDER BY {Quote(_table.KeyColumn)}";
    }

    // UPDATE ... SET c = new WHERE key = k AND c IS NOT DISTINCT FROM old: a value the application rewrote meanwhile is not overwritten.
    private string UpdateSql()
    {
        var n = _table.Columns.Count;
        var set = string.Join(", ", _table.Columns.Select((c, i) => $"{Quote(c.DatabaseColumn)} = {{{i}}}"));
        var same = string.Join(" AND ", _table.Columns.Select((c, i) => $"({Quote(c.DatabaseColumn)} = {{{n + 1 + i}}} OR ({Quote(c.DatabaseColumn)} IS NULL AND {{{n + 1 + i}}} IS NULL))"));
        return $"UPDATE {Quote(_table.Table)} SET {set} WHERE {Quote(_table.KeyColumn)} = {{{n}}} AND {same}";
    }

    private async Task<List<(object Key, object?[] Values)>> ReadBatchAsync(DbConnection connection, string select, object? lastKey, CancellationToken cancellationToken)
    {
        var sql = connection is SqlConnection
            ? select.Replace("SELECT ", $"SELECT TOP ({_batchSize}) ", StringComparison.Ordinal)
            : $"{select} LIMIT {_batchSize}";
        await using var command = Command(connection, null, sql, lastKey is null ? [] : [KeyParameter(connection, lastKey)]);
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

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
