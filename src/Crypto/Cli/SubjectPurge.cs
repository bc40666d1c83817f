using System.Data;
using System.Data.Common;
using System.Globalization;

namespace CrmSecurity.Crypto.Cli;

/// <summary>A <c>--purge TABLE:SUBJECT_COLUMN:INDEX_COLUMN[,INDEX_COLUMN...]</c> argument: blind-index columns to clear for a shredded subject.</summary>
internal sealed record PurgeTarget(string? Schema, string Table, string SubjectColumn, IReadOnlyList<string> IndexColumns)
{
    private const int MaxIdentifierLength = 128; // SQL Server's sysname; PostgreSQL's 63 is caught by the catalog lookup

    public string DisplayName => Schema is null ? Table : $"{Schema}.{Table}";

    /// <summary>Parses the argument; TABLE may be <c>schema.table</c>. Null with <paramref name="error"/> when it is malformed.</summary>
    public static PurgeTarget? Parse(string argument, out string? error)
    {
        var parts = argument.Split(':');
        var columns = parts.Length == 3 ? parts[2].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
        if (parts.Length != 3 || parts.Any(string.IsNullOrWhiteSpace) || columns.Length == 0)
        {
            error = $"--purge '{argument}' is not TABLE:SUBJECT_COLUMN:INDEX_COLUMN[,INDEX_COLUMN...].";
            return null;
        }

        var table = parts[0].Split('.', 2);
        var (schema, name) = table.Length == 2 ? (table[0], table[1]) : ((string?)null, table[0]);
        foreach (var identifier in new[] { schema, name, parts[1] }.Concat(columns))
        {
            if (identifier is not null && (identifier.Length == 0 || identifier.Length > MaxIdentifierLength || identifier.Any(char.IsControl)))
            {
                error = $"--purge '{argument}': '{identifier}' is not a valid table or column name (1 to {MaxIdentifierLength} characters, no control characters).";
                return null;
            }
        }

        error = null;
        return new PurgeTarget(schema, name, parts[1], columns);
    }
}

/// <summary>How the subject column is typed in the database, so the subject id is compared as that type.</summary>
internal enum SubjectColumnKind
{
    Integer,
    Uuid,
    Text,
}

/// <summary>
/// Clears a shredded subject's blind-index columns with a statement that is correct on SQLite, PostgreSQL and SQL
/// Server: the subject column is compared as the type it is (its type is read from the database's catalog, which
/// also proves the table and columns exist), the subject id is a parameter of that type, and identifiers are
/// quoted the provider's way. No cast on the column, so an index on it is used.
/// </summary>
internal static class SubjectPurge
{
    /// <summary>Checks that the table and columns exist (before anything is shredded) and returns the subject column's type.</summary>
    public static async Task<SubjectColumnKind> CheckAsync(DbConnection connection, SqlDialect provider, PurgeTarget target, CancellationToken cancellationToken)
    {
        if (connection.State != ConnectionState.Open)
        {
            await connection.OpenAsync(cancellationToken);
        }

        var kind = await ColumnKindAsync(connection, provider, target, target.SubjectColumn, cancellationToken)
            ?? throw new PurgeException($"--purge: {target.DisplayName} has no column {target.SubjectColumn} (or there is no such table).");
        foreach (var column in target.IndexColumns)
        {
            if (await ColumnTypeAsync(connection, provider, target, column, cancellationToken) is null)
            {
                throw new PurgeException($"--purge: {target.DisplayName} has no column {column}.");
            }
        }

        return kind;
    }

    public static async Task<int> ExecuteAsync(DbConnection connection, (string Sql, IReadOnlyList<object> Values) statement, CancellationToken cancellationToken)
    {
        if (connection.State != ConnectionState.Open)
        {
            await connection.OpenAsync(cancellationToken);
        }

        await using var command = connection.CreateCommand();
        command.CommandText = statement.Sql;
        for (var i = 0; i < statement.Values.Count; i++)
        {
            command.Parameters.Add(Parameter(command, $"@p{i}", statement.Values[i]));
        }

        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The UPDATE and its parameter values (<c>@p0</c>, <c>@p1</c>, ...), typed as the subject column.</summary>
    internal static (string Sql, IReadOnlyList<object> Values) Statement(SqlDialect provider, PurgeTarget target, SubjectColumnKind kind, string subject)
    {
        List<object> values = kind switch
        {
            SubjectColumnKind.Integer => long.TryParse(subject, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number)
                ? [number]
                : throw new PurgeException($"--subject '{subject}' is not a whole number, but {target.DisplayName}.{target.SubjectColumn} is an integer column."),
            SubjectColumnKind.Uuid => Guid.TryParse(subject, out var guid)
                ? [guid]
                : throw new PurgeException($"--subject '{subject}' is not a UUID, but {target.DisplayName}.{target.SubjectColumn} is a UUID column."),
            // A Guid kept as text may be in either case (EF Core writes upper-case in SQLite; the library binds the
            // lower-case "D" form): compare both forms, exactly, rather than lower-casing the column.
            _ => Guid.TryParse(subject, out var textGuid)
                ? [.. new[] { subject, textGuid.ToString("D"), textGuid.ToString("D").ToUpperInvariant() }.Distinct(StringComparer.Ordinal)]
                : [subject],
        };

        var set = string.Join(", ", target.IndexColumns.Select(c => $"{Quote(provider, c)} = NULL"));
        var subjectColumn = Quote(provider, target.SubjectColumn);
        var where = values.Count == 1
            ? $"{subjectColumn} = @p0"
            : $"{subjectColumn} IN ({string.Join(", ", values.Select((_, i) => $"@p{i}"))})";
        return ($"UPDATE {QuoteTable(provider, target)} SET {set} WHERE {where}", values);
    }

    /// <summary>The catalog query giving a column's data type (parameters <c>@schema</c>, <c>@table</c>, <c>@column</c>).</summary>
    internal static string CatalogQuery(SqlDialect provider) => provider switch
    {
        // pragma_table_info is the table-valued form of PRAGMA table_info; it takes the table name as a bound value.
        SqlDialect.Sqlite => "SELECT type FROM pragma_table_info(@table, COALESCE(@schema, 'main')) WHERE name = @column",
        SqlDialect.PostgreSql => "SELECT data_type FROM information_schema.columns WHERE table_schema = COALESCE(@schema, current_schema()) AND table_name = @table AND column_name = @column",
        _ => "SELECT DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = COALESCE(@schema, SCHEMA_NAME()) AND TABLE_NAME = @table AND COLUMN_NAME = @column",
    };

    internal static SubjectColumnKind? Kind(SqlDialect provider, string dataType)
    {
        var type = dataType.Trim().ToUpperInvariant();
        if (provider == SqlDialect.Sqlite)
        {
            // SQLite type affinity rules (https://www.sqlite.org/datatype3.html §3.1): INT first, then text types.
            return type.Contains("INT", StringComparison.Ordinal) ? SubjectColumnKind.Integer
                : type.Contains("CHAR", StringComparison.Ordinal) || type.Contains("CLOB", StringComparison.Ordinal) || type.Contains("TEXT", StringComparison.Ordinal) ? SubjectColumnKind.Text
                : null;
        }

        return type switch
        {
            "UUID" or "UNIQUEIDENTIFIER" => SubjectColumnKind.Uuid,
            "SMALLINT" or "INTEGER" or "INT" or "BIGINT" or "TINYINT" => SubjectColumnKind.Integer,
            "TEXT" or "CHARACTER VARYING" or "CHARACTER" or "VARCHAR" or "NVARCHAR" or "CHAR" or "NCHAR" or "CITEXT" => SubjectColumnKind.Text,
            _ => null,
        };
    }

    internal static string Quote(SqlDialect provider, string identifier) => provider == SqlDialect.SqlServer
        ? "[" + identifier.Replace("]", "]]", StringComparison.Ordinal) + "]"
        : "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    internal static SqlDialect ProviderOf(string? efProviderName) => efProviderName switch
    {
        "Microsoft.EntityFrameworkCore.Sqlite" => SqlDialect.Sqlite,
        "Npgsql.EntityFrameworkCore.PostgreSQL" => SqlDialect.PostgreSql,
        "Microsoft.EntityFrameworkCore.SqlServer" => SqlDialect.SqlServer,
        _ => throw new PurgeException($"--purge does not support the database provider '{efProviderName}'."),
    };

    private static string QuoteTable(SqlDialect provider, PurgeTarget target) =>
        target.Schema is null ? Quote(provider, target.Table) : $"{Quote(provider, target.Schema)}.{Quote(provider, target.Table)}";

    private static async Task<SubjectColumnKind?> ColumnKindAsync(DbConnection connection, SqlDialect provider, PurgeTarget target, string column, CancellationToken cancellationToken)
    {
        var type = await ColumnTypeAsync(connection, provider, target, column, cancellationToken);
        return type is null
            ? null
            : Kind(provider, type) ?? throw new PurgeException($"--purge: {target.DisplayName}.{column} has type '{type}'; a subject column must be an integer, a UUID or text.");
    }

    private static async Task<string?> ColumnTypeAsync(DbConnection connection, SqlDialect provider, PurgeTarget target, string column, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = CatalogQuery(provider);
        command.Parameters.Add(Parameter(command, "@schema", (object?)target.Schema ?? DBNull.Value, DbType.String));
        command.Parameters.Add(Parameter(command, "@table", target.Table, DbType.String));
        command.Parameters.Add(Parameter(command, "@column", column, DbType.String));
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    private static DbParameter Parameter(DbCommand command, string name, object value, DbType? type = null)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        parameter.DbType = type ?? value switch
        {
            long => DbType.Int64,
            Guid => DbType.Guid,
            _ => DbType.String,
        };
        return parameter;
    }
}

/// <summary>A purge argument that does not fit the database; the message says what and where.</summary>
internal sealed class PurgeException(string message) : Exception(message);
