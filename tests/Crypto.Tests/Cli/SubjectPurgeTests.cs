using CrmSecurity.Crypto.Cli;

namespace CrmSecurity.Crypto.Tests.Cli;

/// <summary>
/// The SQL `keys shred --purge` sends. No SQL Server runs here, so its statements are checked as text; SQLite and
/// PostgreSQL run them for real in <see cref="KeyVerbTests"/>.
/// </summary>
public sealed class SubjectPurgeTests
{
    private static readonly Guid Subject = Guid.Parse("3f2504e0-4f89-11d3-9a0c-0305e82c3301");

    [Fact]
    public void On_sql_server_a_uuid_subject_is_compared_as_a_uniqueidentifier_parameter_with_bracketed_identifiers()
    {
        var target = Target("dbo.people:id:email_bidx,phone_bidx");

        var (sql, values) = SubjectPurge.Statement(SqlDialect.SqlServer, target, SubjectColumnKind.Uuid, Subject.ToString());

        Assert.Equal("UPDATE [dbo].[people] SET [email_bidx] = NULL, [phone_bidx] = NULL WHERE [id] = @p0", sql);
        Assert.Equal([Subject], values);
    }

    [Fact]
    public void On_sql_server_an_integer_subject_is_a_bigint_parameter_and_brackets_in_names_are_doubled()
    {
        var target = Target("odd]name:lead id:email]bidx");

        var (sql, values) = SubjectPurge.Statement(SqlDialect.SqlServer, target, SubjectColumnKind.Integer, "42");

        Assert.Equal("UPDATE [odd]]name] SET [email]]bidx] = NULL WHERE [lead id] = @p0", sql);
        Assert.Equal([42L], values);
    }

    [Fact]
    public void A_uuid_kept_as_text_is_matched_in_both_cases_without_changing_the_column()
    {
        var target = Target("people:Id:Email_bidx_email");

        var (sql, values) = SubjectPurge.Statement(SqlDialect.SqlServer, target, SubjectColumnKind.Text, Subject.ToString());

        Assert.Equal("UPDATE [people] SET [Email_bidx_email] = NULL WHERE [Id] IN (@p0, @p1)", sql);
        Assert.Equal([Subject.ToString(), Subject.ToString().ToUpperInvariant()], values);
    }

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("PostgreSql")]
    [InlineData("SqlServer")]
    public void No_provider_gets_a_cast_or_a_function_on_the_subject_column(string providerName)
    {
        var provider = Enum.Parse<SqlDialect>(providerName);
        foreach (var kind in Enum.GetValues<SubjectColumnKind>())
        {
            var (sql, _) = SubjectPurge.Statement(provider, Target("people:id:email_bidx"), kind, kind == SubjectColumnKind.Integer ? "7" : Subject.ToString());

            Assert.DoesNotContain("CAST", sql, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("LOWER", sql, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public void Sqlite_and_postgresql_quote_identifiers_with_double_quotes()
    {
        Assert.Equal("UPDATE \"crm\".\"pe\"\"ople\" SET \"email_bidx\" = NULL WHERE \"id\" = @p0", SubjectPurge.Statement(SqlDialect.PostgreSql, Target("crm.pe\"ople:id:email_bidx"), SubjectColumnKind.Uuid, Subject.ToString()).Sql);
    }

    [Fact]
    public void The_sql_server_catalog_query_reads_information_schema_with_parameters_only()
    {
        var sql = SubjectPurge.CatalogQuery(SqlDialect.SqlServer);

        Assert.Equal("SELECT DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = COALESCE(@schema, SCHEMA_NAME()) AND TABLE_NAME = @table AND COLUMN_NAME = @column", sql);
    }

    [Theory]
    [InlineData("SqlServer", "uniqueidentifier", "Uuid")]
    [InlineData("SqlServer", "bigint", "Integer")]
    [InlineData("SqlServer", "nvarchar", "Text")]
    [InlineData("PostgreSql", "uuid", "Uuid")]
    [InlineData("PostgreSql", "character varying", "Text")]
    [InlineData("Sqlite", "TEXT", "Text")]
    [InlineData("Sqlite", "INTEGER", "Integer")]
    public void Column_types_map_to_the_kind_the_subject_is_compared_as(string provider, string type, string kind) =>
        Assert.Equal(Enum.Parse<SubjectColumnKind>(kind), SubjectPurge.Kind(Enum.Parse<SqlDialect>(provider), type));

    [Fact]
    public void A_subject_that_is_not_of_the_column_type_is_refused_naming_both()
    {
        var error = Assert.Throws<PurgeException>(() => SubjectPurge.Statement(SqlDialect.SqlServer, Target("leads:id:email_bidx"), SubjectColumnKind.Integer, "p1"));

        Assert.Equal("--subject 'p1' is not a whole number, but leads.id is an integer column.", error.Message);
    }

    [Theory]
    [InlineData("people:id")]
    [InlineData("people:id:")]
    [InlineData("peo\nple:id:email_bidx")]
    public void A_malformed_purge_argument_is_refused(string argument)
    {
        Assert.Null(PurgeTarget.Parse(argument, out var error));
        Assert.StartsWith($"--purge '{argument}'", error, StringComparison.Ordinal);
    }

    private static PurgeTarget Target(string argument) => PurgeTarget.Parse(argument, out var error) ?? throw new InvalidOperationException(error);
}
