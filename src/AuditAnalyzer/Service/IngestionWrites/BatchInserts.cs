using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace CrmSecurity.AuditAnalyzer.Service.IngestionWrites;

/// <summary>
/// Stores a parsed batch without EF Core's change tracking (it cost a fifth of a request's CPU on PostgreSQL): one
/// statement that inserts every row and skips those whose <c>event_key</c> is already stored, in one transaction, and
/// counts the rows it inserted. SQLite: multi-row <c>INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING</c>, with
/// every batch write of a database file taken in turn before the transaction opens (see <see cref="SqliteWriters"/>).
/// PostgreSQL: one <c>INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING</c> (one parameter per column,
/// whatever the batch size). Other providers (SQL Server) keep EF Core's path.
/// </summary>
internal static class BatchInserts
{
    private const string SqliteProvider = "Microsoft.EntityFrameworkCore.Sqlite";
    private const string PostgreSqlProvider = "Npgsql.EntityFrameworkCore.PostgreSQL";

    // Rows per SQLite statement: 4 parameters a row plus 2, well under SQLite's 32,766 bound variables.
    private const int SqliteRowsPerStatement = 500;

    private static readonly ConcurrentDictionary<(IModel Model, int Rows), string> SqliteStatements = new();
    private static readonly ConcurrentDictionary<IModel, string> PostgreSqlStatements = new();

    /// <summary>Whether this database gets the statements here (otherwise the caller keeps its own path).</summary>
    public static bool Supports(LiveDbContext db) => db.Database.ProviderName is SqliteProvider or PostgreSqlProvider;

    /// <summary>
    /// Inserts the rows whose key is not stored yet, all or none, committed when this returns; returns how many were new.
    /// The rows have distinct keys (the parser drops repeats within a batch) and one client and arrival time.
    /// </summary>
    public static async Task<int> InsertAsync(LiveDbContext db, IReadOnlyList<StoredEventRow> rows, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
        {
            return 0;
        }

        return db.Database.ProviderName switch
        {
            SqliteProvider => await SqliteAsync(db, rows, cancellationToken),
            PostgreSqlProvider => await PostgreSqlAsync(db, rows, cancellationToken),
            _ => throw new NotSupportedException($"{db.Database.ProviderName} stores batches through EF Core."),
        };
    }

    private static async Task<int> SqliteAsync(LiveDbContext db, IReadOnlyList<StoredEventRow> rows, CancellationToken cancellationToken)
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
            var inserted = 0;
            for (var start = 0; start < rows.Count; start += SqliteRowsPerStatement)
            {
                var count = Math.Min(SqliteRowsPerStatement, rows.Count - start);
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = SqliteStatements.GetOrAdd((db.Model, count), static (key, db) => SqliteStatement(db, key.Rows), db);
                Add(command, "@c", rows[start].ClientId);
                Add(command, "@r", rows[start].ReceivedTicks);
                for (var index = 0; index < count; index++)
                {
                    var row = rows[start + index];
                    var suffix = index.ToString(CultureInfo.InvariantCulture);
                    Add(command, "@k" + suffix, row.EventKey);
                    Add(command, "@u" + suffix, row.UserId);
                    Add(command, "@p" + suffix, row.Partition);
                    Add(command, "@t" + suffix, row.TimestampTicks);
                    Add(command, "@l" + suffix, row.Line);
                }

                inserted += await command.ExecuteNonQueryAsync(cancellationToken);
            }

            await transaction.CommitAsync(cancellationToken);
            return inserted;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private static async Task<int> PostgreSqlAsync(LiveDbContext db, IReadOnlyList<StoredEventRow> rows, CancellationToken cancellationToken)
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

        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            // One statement is one transaction: committed (and, with synchronous_commit on, durable) when it returns.
            await using var command = db.Database.GetDbConnection().CreateCommand();
            command.CommandText = PostgreSqlStatements.GetOrAdd(db.Model, static (_, db) => PostgreSqlStatement(db), db);
            Add(command, "c", rows[0].ClientId);
            Add(command, "r", rows[0].ReceivedTicks);
            Add(command, "k", keys);
            Add(command, "u", users);
            Add(command, "p", partitions);
            Add(command, "t", times);
            Add(command, "l", lines);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private static void Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
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
