using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Migrations.Operations;
using Microsoft.EntityFrameworkCore.Storage;

namespace CrmSecurity.Server.Data;

/// <summary>What an in-place upgrade added to a module's tables.</summary>
internal sealed record SchemaUpgradeResult(int Tables, int Columns, int Indexes);

/// <summary>
/// Brings a module's tables up to its EF Core model in place, additively: tables that do not exist are created, columns
/// that do not exist are added, indexes that do not exist are created. Nothing is renamed, changed or dropped, so a
/// module's schema changes must be additive (new columns nullable or with a default): a database made by the previous
/// build keeps every row and keeps working. The DDL is what EF Core's migrations generate for the provider, run in the
/// caller's transaction (PostgreSQL, SQL Server and SQLite all run DDL transactionally), so a failed upgrade changes nothing.
/// </summary>
internal static class SchemaUpgrade
{
    public static async Task<SchemaUpgradeResult> AddMissingAsync(DbContext context, CancellationToken cancellationToken)
    {
        var database = context.Database;
        var model = context.GetService<IDesignTimeModel>().Model;
        var operations = context.GetService<IMigrationsModelDiffer>().GetDifferences(null, model.GetRelationalModel());
        var existing = await ExistingColumnsAsync(database, cancellationToken);
        var indexes = await ExistingIndexesAsync(database, cancellationToken);

        var upgrade = new List<MigrationOperation>();
        var created = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        int tables = 0, columns = 0, indexCount = 0;
        foreach (var operation in operations)
        {
            switch (operation)
            {
                case CreateTableOperation table when !existing.ContainsKey(table.Name):
                    upgrade.Add(table);
                    created.Add(table.Name);
                    tables++;
                    break;
                case CreateTableOperation table:
                    var present = existing[table.Name];
                    foreach (var column in table.Columns.Where(c => !present.Contains(c.Name)))
                    {
                        upgrade.Add(AddColumn(table, column));
                        columns++;
                    }

                    break;
                case CreateIndexOperation index when created.Contains(index.Table) || !indexes.Contains(index.Name):
                    upgrade.Add(index);
                    indexCount += created.Contains(index.Table) ? 0 : 1;
                    break;
                case EnsureSchemaOperation schema:
                    upgrade.Insert(0, schema);
                    break;
            }
        }

        if (upgrade.Count == 0)
        {
            return new SchemaUpgradeResult(0, 0, 0);
        }

        var commands = context.GetService<IMigrationsSqlGenerator>().Generate(upgrade, model);
        var connection = context.GetService<IRelationalConnection>();
        foreach (var command in commands)
        {
            await command.ExecuteNonQueryAsync(connection, null, cancellationToken);
        }

        return new SchemaUpgradeResult(tables, columns, indexCount);
    }

    /// <summary>
    /// A column added to a table that has rows: SQLite (and good sense) refuses NOT NULL without a default, so a
    /// non-nullable column without one gets its type's default value, as EF Core's own migrations do.
    /// </summary>
    private static AddColumnOperation AddColumn(CreateTableOperation table, AddColumnOperation column)
    {
        var add = new AddColumnOperation
        {
            Name = column.Name,
            Table = table.Name,
            Schema = table.Schema,
            ClrType = column.ClrType,
            ColumnType = column.ColumnType,
            IsUnicode = column.IsUnicode,
            IsFixedLength = column.IsFixedLength,
            MaxLength = column.MaxLength,
            Precision = column.Precision,
            Scale = column.Scale,
            IsRowVersion = column.IsRowVersion,
            IsNullable = column.IsNullable,
            DefaultValue = column.DefaultValue,
            DefaultValueSql = column.DefaultValueSql,
            ComputedColumnSql = column.ComputedColumnSql,
            IsStored = column.IsStored,
            Comment = column.Comment,
            Collation = column.Collation,
        };
        foreach (var annotation in column.GetAnnotations())
        {
            add.AddAnnotation(annotation.Name, annotation.Value);
        }

        if (!add.IsNullable && add.DefaultValue is null && add.DefaultValueSql is null && add.ComputedColumnSql is null)
        {
            add.DefaultValue = add.ClrType == typeof(string) ? "" : add.ClrType.IsValueType ? Activator.CreateInstance(add.ClrType) : null;
        }

        return add;
    }

    private static async Task<Dictionary<string, HashSet<string>>> ExistingColumnsAsync(DatabaseFacade database, CancellationToken cancellationToken)
    {
        var sql = database.ProviderName switch
        {
            "Microsoft.EntityFrameworkCore.Sqlite" =>
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table'",
            "Npgsql.EntityFrameworkCore.PostgreSQL" =>
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()",
            _ => "SELECT TABLE_NAME, COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = SCHEMA_NAME()",
        };
        var result = new Dictionary<string, HashSet<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var (table, column) in await PairsAsync(database, sql, cancellationToken))
        {
            if (!result.TryGetValue(table, out var set))
            {
                result[table] = set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            }

            set.Add(column);
        }

        return result;
    }

    private static async Task<HashSet<string>> ExistingIndexesAsync(DatabaseFacade database, CancellationToken cancellationToken)
    {
        var sql = database.ProviderName switch
        {
            "Microsoft.EntityFrameworkCore.Sqlite" => "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'",
            "Npgsql.EntityFrameworkCore.PostgreSQL" => "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = current_schema()",
            _ => "SELECT OBJECT_NAME(object_id), name FROM sys.indexes WHERE name IS NOT NULL",
        };
        return (await PairsAsync(database, sql, cancellationToken)).Select(p => p.Second).ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    private static async Task<List<(string First, string Second)>> PairsAsync(DatabaseFacade database, string sql, CancellationToken cancellationToken)
    {
        var connection = database.GetDbConnection();
        await using DbCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = database.CurrentTransaction?.GetDbTransaction();
        var pairs = new List<(string, string)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            pairs.Add((reader.GetString(0), reader.GetString(1)));
        }

        return pairs;
    }
}
