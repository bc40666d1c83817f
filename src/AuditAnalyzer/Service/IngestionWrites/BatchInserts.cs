using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using NpgsqlTypes;

namespace CrmSecurity.AuditAnalyzer.Service.IngestionWrites;

/// <summary>
/// Stores a parsed batch without EF Core's change tracking (it cost a fifth of a request's CPU on PostgreSQL): one
/// statement that inserts every row and skips those whose <c>event_key</c> is already stored, in one transaction, and
/// counts the rows it inserted. SQLite: one prepared <c>INSERT ... VALUES (...) ON CONFLICT DO NOTHING</c> run per row, with
/// every batch write of a database file taken in turn before the transaction opens (see <see cref="SqliteWriters"/>).
/// PostgreSQL: the keys already stored looked up in one statement, the others written with binary <c>COPY</c>, in one
/// transaction; when another writer stores one of the keys meanwhile (the COPY fails on the unique index), one
/// <c>INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING</c> per batch instead. Several batches (of concurrent
/// requests, see <see cref="GroupCommits"/>) share one transaction. Other providers (SQL Server) keep EF Core's path.
/// </summary>
internal static class BatchInserts
{
    private const string SqliteProvider = "Microsoft.EntityFrameworkCore.Sqlite";
    private const string PostgreSqlProvider = "Npgsql.EntityFrameworkCore.PostgreSQL";


    private static readonly ConcurrentDictionary<(IModel Model, int Rows), string> SqliteStatements = new();
    private static readonly ConcurrentDictionary<IModel, string> PostgreSqlStatements = new();
    private static readonly ConcurrentDictionary<IModel, (string Select, string Copy)> PostgreSqlCopyStatements = new();


    /// <summary>Whether this database gets the statements here (otherwise the caller keeps its own path).</summary>
    public static bool Supports(LiveDbContext db) => db.Database.ProviderName is SqliteProvider or PostgreSqlProvider;

    /// <summary>Whether the database's write work runs in this process (SQLite), on the host's own cores.</summary>
    public static bool WritesInProcess(LiveDbContext db) => db.Database.ProviderName is SqliteProvider;

    /// <summary>
    /// Inserts the rows whose key is not stored yet, all or none, committed when this returns; returns how many were new.
    /// The rows have distinct keys (the parser drops repeats within a batch) and one client and arrival time.
    /// </summary>
    public static async Task<int> InsertAsync(LiveDbContext db, IReadOnlyList<StoredEventRow> rows, CancellationToken cancellationToken) =>
        rows.Count == 0 ? 0 : (await InsertAsync(db, [rows], cancellationToken))[0];

    /// <summary>
    /// Inserts several batches in one transaction, one statement per batch in order, all or none, committed when this
    /// returns; returns per batch how many of its rows were new (a key stored by an earlier batch of the same call counts
    /// as already stored for the later one). Each batch has distinct keys and one client and arrival time.
    /// </summary>
    public static async Task<int[]> InsertAsync(LiveDbContext db, IReadOnlyList<IReadOnlyList<StoredEventRow>> batches, CancellationToken cancellationToken) =>
        db.Database.ProviderName switch
        {
            SqliteProvider => await SqliteAsync(db, batches, cancellationToken),
            PostgreSqlProvider => await PostgreSqlAsync(db, batches, cancellationToken),
            _ => throw new NotSupportedException($"{db.Database.ProviderName} stores batches through EF Core."),
        };

    private static async Task<int[]> SqliteAsync(LiveDbContext db, IReadOnlyList<IReadOnlyList<StoredEventRow>> batches, CancellationToken cancellationToken)
    {
        // Microsoft.Data.Sqlite waits for SQLite's write lock by sleeping on the calling thread (its busy retry): under
        // concurrent batches a third of the thread pool slept there and token and decision requests starved. Batch
        // writes of one file take turns here instead, asynchronously, before any of them opens a transaction.
        using var turn = await SqliteWriters.TakeTurnAsync(db.Database.GetConnectionString() ?? "", cancellationToken);
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            var connection = db.Database.GetDbConnection();
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            var inserted = new int[batches.Count];
            // One prepared single-row statement run per row: SQLite is in-process, so a row costs no round trip, and a
            // 500-row statement cost more than it saved (2,500 parameters bound by name, each looked up among all of them;
            // 136 µs of service CPU per event in the load run).
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = SqliteStatements.GetOrAdd((db.Model, 1), static (key, db) => SqliteStatement(db, key.Rows), db);
            var (key, client, user, partition, time, line, received) = (Add(command, "@k0", ""), Add(command, "@c", ""), Add(command, "@u0", ""),
                Add(command, "@p0", 0), Add(command, "@t0", 0L), Add(command, "@l0", ""), Add(command, "@r", 0L));
            await command.PrepareAsync(cancellationToken);
            for (var batch = 0; batch < batches.Count; batch++)
            {
                foreach (var row in batches[batch])
                {
                    (key.Value, client.Value, user.Value, partition.Value, time.Value, line.Value, received.Value) =
                        (row.EventKey, row.ClientId, row.UserId, row.Partition, row.TimestampTicks, row.Line, row.ReceivedTicks);
                    inserted[batch] += await command.ExecuteNonQueryAsync(cancellationToken);
                }
            }

            await transaction.CommitAsync(cancellationToken);
            return inserted;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private static async Task<int[]> PostgreSqlAsync(LiveDbContext db, IReadOnlyList<IReadOnlyList<StoredEventRow>> batches, CancellationToken cancellationToken)
    {
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            try
            {
                return await PostgreSqlCopyAsync(db, batches, cancellationToken);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                // A key stored by another writer (another instance) between the look-up and the COPY: the COPY's
                // transaction is rolled back, and the insert that skips stored keys decides row by row.
                return await PostgreSqlInsertAsync(db, batches, cancellationToken);
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// <summary>
    /// The keys already stored, looked up in one statement; the others written with binary COPY (PostgreSQL's bulk path,
    /// with multi-row heap inserts), all in one
    /// transaction. Counts are exact: a key stored before, or by an earlier batch of the same call, is not copied.
    /// </summary>
    private static async Task<int[]> PostgreSqlCopyAsync(LiveDbContext db, IReadOnlyList<IReadOnlyList<StoredEventRow>> batches, CancellationToken cancellationToken)
    {
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        var (select, copy) = PostgreSqlCopyStatements.GetOrAdd(db.Model, static (_, db) => PostgreSqlCopyStatement(db), db);
        var total = 0;
        foreach (var rows in batches)
        {
            total += rows.Count;
        }

        var keys = new string[total];
        var at = 0;
        foreach (var rows in batches)
        {
            foreach (var row in rows)
            {
                keys[at++] = row.EventKey;
            }
        }

        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var taken = new HashSet<string>(StringComparer.Ordinal);
        await using (var lookup = new NpgsqlCommand(select, connection, transaction))
        {
            lookup.Parameters.Add(new NpgsqlParameter<string[]>("k", keys));
            await using var reader = await lookup.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                taken.Add(reader.GetString(0));
            }
        }

        var inserted = new int[batches.Count];
        await using (var import = await connection.BeginBinaryImportAsync(copy, cancellationToken))
        {
            for (var batch = 0; batch < batches.Count; batch++)
            {
                foreach (var row in batches[batch])
                {
                    if (!taken.Add(row.EventKey))
                    {
                        continue;
                    }

                    await import.StartRowAsync(cancellationToken);
                    await import.WriteAsync(row.EventKey, NpgsqlDbType.Varchar, cancellationToken);
                    await import.WriteAsync(row.ClientId, NpgsqlDbType.Varchar, cancellationToken);
                    await import.WriteAsync(row.UserId, NpgsqlDbType.Varchar, cancellationToken);
                    await import.WriteAsync(row.Partition, NpgsqlDbType.Integer, cancellationToken);
                    await import.WriteAsync(row.TimestampTicks, NpgsqlDbType.Bigint, cancellationToken);
                    await import.WriteAsync(row.Line, NpgsqlDbType.Text, cancellationToken);
                    await import.WriteAsync(false, NpgsqlDbType.Boolean, cancellationToken);
                    await import.WriteAsync(row.ReceivedTicks, NpgsqlDbType.Bigint, cancellationToken);
                    inserted[batch]++;
                }
            }

            await import.CompleteAsync(cancellationToken);
        }

        // Committed (and, with synchronous_commit on, durable) when it returns.
        await transaction.CommitAsync(cancellationToken);
        return inserted;
    }

    private static (string Select, string Copy) PostgreSqlCopyStatement(LiveDbContext db)
    {
        var (table, columns, conflict) = Names(db);
        return ($"SELECT {conflict} FROM {table} WHERE {conflict} = ANY(@k)", $"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)");
    }

    // The fallback: one INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING per batch.
    private static async Task<int[]> PostgreSqlInsertAsync(LiveDbContext db, IReadOnlyList<IReadOnlyList<StoredEventRow>> batches, CancellationToken cancellationToken)
    {
        // One round trip: Npgsql sends the batch's statements with one Sync, so they run in one implicit transaction
        // (all or none; committed, and with synchronous_commit on durable, when it returns), in order.
        var connection = db.Database.GetDbConnection();
        await using var batch = connection.CreateBatch();
        var sql = PostgreSqlStatements.GetOrAdd(db.Model, static (_, db) => PostgreSqlStatement(db), db);
        foreach (var rows in batches)
        {
            var keys = new string[rows.Count];
            var users = new string[rows.Count];
            var partitions = new int[rows.Count];
            var times = new long[rows.Count];
            var lines = new string[rows.Count];
            for (var index = 0; index < rows.Count; index++)
            {
                var row = rows[index];
                (keys[index], users[index], partitions[index], times[index], lines[index]) = (row.EventKey, row.UserId, row.Partition, row.TimestampTicks, row.Line);
            }

            var command = batch.CreateBatchCommand();
            command.CommandText = sql;
            Add(command, "c", rows.Count == 0 ? "" : rows[0].ClientId);
            Add(command, "r", rows.Count == 0 ? 0L : rows[0].ReceivedTicks);
            Add(command, "k", keys);
            Add(command, "u", users);
            Add(command, "p", partitions);
            Add(command, "t", times);
            Add(command, "l", lines);
            batch.BatchCommands.Add(command);
        }

        await batch.ExecuteNonQueryAsync(cancellationToken);
        var inserted = new int[batches.Count];
        for (var index = 0; index < inserted.Length; index++)
        {
            inserted[index] = batch.BatchCommands[index].RecordsAffected;
        }

        return inserted;
    }

    private static void Add(DbBatchCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    private static DbParameter Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
        return parameter;
    }

    private static string SqliteStatement(LiveDbContext db, int rows)
    {
        var (table, columns, conflict) = Names(db);
        var sql = new StringBuilder(80 * rows + 300).Append(CultureInfo.InvariantCulture, $"INSERT INTO {table} ({columns}) VALUES ");
        for (var index = 0; index < rows; index++)
        {
            sql.Append(index == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@k{index}, @c, @u{index}, @p{index}, @t{index}, @l{index}, 0, @r)");
        }

        return sql.Append(CultureInfo.InvariantCulture, $" ON CONFLICT ({conflict}) DO NOTHING").ToString();
    }

    private static string PostgreSqlStatement(LiveDbContext db)
    {
        var (table, columns, conflict) = Names(db);
        return $"INSERT INTO {table} ({columns}) SELECT r.k, @c, r.u, r.p, r.t, r.l, false, @r "
            + "FROM unnest(@k::text[], @u::text[], @p::integer[], @t::bigint[], @l::text[]) AS r(k, u, p, t, l) "
            + $"ON CONFLICT ({conflict}) DO NOTHING";
    }

    // Table and column names as the EF model maps them (quoted by the provider), in the order the statements fill them.
    private static (string Table, string Columns, string Conflict) Names(LiveDbContext db)
    {
        var entity = db.Model.FindEntityType(typeof(StoredEventRow))!;
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var sql = db.GetService<ISqlGenerationHelper>();
        string Column(string property) => sql.DelimitIdentifier(entity.FindProperty(property)!.GetColumnName(table)!);
        var columns = string.Join(", ",
            new[]
            {
                nameof(StoredEventRow.EventKey), nameof(StoredEventRow.ClientId), nameof(StoredEventRow.UserId), nameof(StoredEventRow.Partition),
                nameof(StoredEventRow.TimestampTicks), nameof(StoredEventRow.Line), nameof(StoredEventRow.Scored), nameof(StoredEventRow.ReceivedTicks),
            }.Select(Column));
        return (sql.DelimitIdentifier(table.Name, table.Schema), columns, Column(nameof(StoredEventRow.EventKey)));
    }
}

/// <summary>
/// One writer at a time per SQLite database file for batch writes: the turn is taken asynchronously (a waiting request
/// holds no thread), so SQLite's own lock is rarely contended and its busy handler (a synchronous sleep) rarely runs.
/// Keyed by connection string, so hosts of one process on one file share a turn and hosts on other files do not.
/// </summary>
internal static class SqliteWriters
{
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Turns = new(StringComparer.Ordinal);

    public static async Task<IDisposable> TakeTurnAsync(string connectionString, CancellationToken cancellationToken)
    {
        var turn = Turns.GetOrAdd(connectionString, static _ => new SemaphoreSlim(1, 1));
        await turn.WaitAsync(cancellationToken);
        return new Turn(turn);
    }

    private sealed class Turn(SemaphoreSlim turn) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                turn.Release();
            }
        }
    }
}
