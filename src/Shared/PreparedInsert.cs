using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace CrmSecurity.Shared;

// One prepared INSERT executed per row inside the caller's transaction, for append-only tables where EF Core's change
// tracking buys nothing (it cost a tenth of the token endpoint's CPU, and ten times the time of a large batch). The
// table, column names, quoting and value conversions come from the EF model, so every provider gets its own SQL.
// Columns the database generates (a sequence) are left out.
internal sealed class PreparedInsert<TRow>
    where TRow : class
{
    // One per model: the SQL differs by provider, and a process may hold several (tests run SQLite and PostgreSQL).
    private static readonly ConcurrentDictionary<IModel, PreparedInsert<TRow>> Cache = new();

    private readonly string _sql;
    private readonly Func<TRow, object?>[] _columns;

    private PreparedInsert(string sql, Func<TRow, object?>[] columns) => (_sql, _columns) = (sql, columns);

    public static PreparedInsert<TRow> For(DbContext db) => Cache.GetOrAdd(db.Model, static (model, db) => Create(model, db), db);

    // Inserts every row with one command on transaction's connection.
    public async Task ExecuteAsync(DbTransaction transaction, IEnumerable<TRow> rows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        await using var command = transaction.Connection!.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = _sql;
        var parameters = new DbParameter[_columns.Length];
        for (var index = 0; index < parameters.Length; index++)
        {
            parameters[index] = command.CreateParameter();
            parameters[index].ParameterName = Name(index);
            command.Parameters.Add(parameters[index]);
        }

        foreach (var row in rows)
        {
            for (var index = 0; index < parameters.Length; index++)
            {
                parameters[index].Value = _columns[index](row) ?? DBNull.Value;
            }

            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    private static PreparedInsert<TRow> Create(IModel model, DbContext db)
    {
        var entity = model.FindEntityType(typeof(TRow))
            ?? throw new InvalidOperationException($"{typeof(TRow).Name} is not an entity of {db.GetType().Name}.");
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var sql = db.GetService<ISqlGenerationHelper>();
        var properties = entity.GetProperties().Where(p => p.ValueGenerated == ValueGenerated.Never).ToArray();
        var columns = properties.Select(property =>
        {
            var getter = property.GetGetter();
            var converter = property.GetValueConverter() ?? property.GetTypeMapping().Converter;
            return (Func<TRow, object?>)(row =>
            {
                var value = getter.GetClrValueUsingContainingEntity(row);
                return value is null || converter is null ? value : converter.ConvertToProvider(value);
            });
        }).ToArray();
        var names = string.Join(", ", properties.Select(p => sql.DelimitIdentifier(p.GetColumnName(table)!)));
        var values = string.Join(", ", properties.Select((_, index) => Name(index)));
        return new PreparedInsert<TRow>($"INSERT INTO {sql.DelimitIdentifier(table.Name, table.Schema)} ({names}) VALUES ({values})", columns);
    }

    private static string Name(int index) => "@p" + index.ToString(CultureInfo.InvariantCulture);
}
