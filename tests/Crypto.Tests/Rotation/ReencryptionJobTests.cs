using System.Data.Common;
using System.Globalization;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Rotation;
using CrmSecurity.Crypto.Subjects;
using CrmSecurity.Crypto.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace CrmSecurity.Crypto.Tests.Rotation;

public sealed class ReencryptionJobTests : IAsyncLifetime
{
    private const int Rows = 600;
    private static readonly ReencryptionTable Table = new("acme", "accounts", "id", RowKeyKind.Number,
        [new ReencryptionColumn("email", "email"), new ReencryptionColumn("national_id", "national_id")]);

    private readonly string _directory = Directory.CreateTempSubdirectory("crm-reencrypt-").FullName;
    private readonly RecordingEventSink _events = new();
    private PostgresDatabase? _postgres;

    public enum Store
    {
        Sqlite,
        PostgreSql,
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task A_job_that_crashes_inside_random_batches_finishes_on_rerun_with_every_row_readable_under_the_new_key(Store store)
    {
        var connectionString = await CreateDatabaseAsync(store);
        using var original = Keyring.CreateNew();
        await FillAsync(store, connectionString, original);
        using var rotated = new FieldEncryption(original.With(TestKeys.Rotated(original.Get(Keyring.FieldsKeyset))), null, _events);

        var random = new Random(20261123);
        var crashes = 0;
        ReencryptionProgress? result = null;
        for (var attempt = 0; attempt < 100 && result is null; attempt++)
        {
            var crashAt = random.Next(1, 8);
            var job = new ReencryptionJob(rotated, Table, batchSize: 50) { BeforeCommit = batch => { if (batch == crashAt) { throw new IOException("simulated crash"); } } };
            await using var connection = Open(store, connectionString);
            try
            {
                result = await job.RunAsync(connection, cancellationToken: TestContext.Current.CancellationToken);
            }
            catch (IOException)
            {
                crashes++;
            }
        }

        Assert.NotNull(result);
        Assert.True(crashes > 3);
        Assert.Equal(Rows, result.RowsDone);
        await AssertAllUnderPrimaryAsync(store, connectionString, rotated);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task Running_a_finished_job_again_changes_nothing(Store store)
    {
        var connectionString = await CreateDatabaseAsync(store);
        using var original = Keyring.CreateNew();
        await FillAsync(store, connectionString, original);
        using var rotated = new FieldEncryption(original.With(TestKeys.Rotated(original.Get(Keyring.FieldsKeyset))), null, _events);
        await using var connection = Open(store, connectionString);

        var first = await new ReencryptionJob(rotated, Table, 100).RunAsync(connection, cancellationToken: TestContext.Current.CancellationToken);
        var snapshot = await ReadAllAsync(connection);
        var second = await new ReencryptionJob(rotated, Table, 100).RunAsync(connection, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(2 * Rows, first.ValuesRewritten);
        Assert.Equal(0, second.ValuesRewritten);
        Assert.Equal(snapshot, await ReadAllAsync(connection), new RowComparer());
    }

    [Fact]
    public async Task A_value_that_cannot_be_decrypted_is_counted_and_left_as_it_was()
    {
        var connectionString = await CreateDatabaseAsync(Store.Sqlite);
        using var original = Keyring.CreateNew();
        await FillAsync(Store.Sqlite, connectionString, original);
        await using var connection = Open(Store.Sqlite, connectionString);
        await using (var corrupt = connection.CreateCommand())
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            corrupt.CommandText = "UPDATE accounts SET email = (SELECT email FROM accounts WHERE id = 2) WHERE id = 1";
            await corrupt.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        var before = (await ReadAllAsync(connection))[0];
        using var rotated = new FieldEncryption(original.With(TestKeys.Rotated(original.Get(Keyring.FieldsKeyset))), null, _events);
        var result = await new ReencryptionJob(rotated, Table, 100).RunAsync(connection, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(1, result.ValuesFailed);
        Assert.Equal(before.Email, (await ReadAllAsync(connection))[0].Email);
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    internal static async Task FillAsync(Store store, string connectionString, Keyring keyring, int rows = Rows)
    {
        await using var connection = Open(store, connectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using (var create = connection.CreateCommand())
        {
            create.CommandText = store == Store.Sqlite
                ? "CREATE TABLE accounts (id INTEGER PRIMARY KEY, email BLOB, national_id BLOB)"
                : "CREATE TABLE accounts (id bigint PRIMARY KEY, email bytea, national_id bytea)";
            await create.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        using var encryption = new FieldEncryption(Keyring.Of(keyring.Keysets.Select(k => KeysetBuilder.From(k).Build()).ToList()), null, new RecordingEventSink());
        var email = encryption.Encryptor(new FieldContext("acme", "accounts", "email"));
        var national = encryption.DeterministicEncryptor(new FieldContext("acme", "accounts", "national_id"));
        await using var transaction = await connection.BeginTransactionAsync(TestContext.Current.CancellationToken);
        for (var id = 1; id <= rows; id++)
        {
            await using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO accounts (id, email, national_id) VALUES (@id, @email, @national)";
            var row = id.ToString(CultureInfo.InvariantCulture);
            Add(insert, "@id", (long)id);
            Add(insert, "@email", email.EncryptString($"user{id}@example.com", row));
            Add(insert, "@national", national.EncryptString($"ID{id:000000}"));
            await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        await transaction.CommitAsync(TestContext.Current.CancellationToken);
    }

    internal static async Task AssertAllUnderPrimaryAsync(Store store, string connectionString, FieldEncryption encryption, int expectedRows = Rows)
    {
        await using var connection = Open(store, connectionString);
        var rows = await ReadAllAsync(connection);
        var keyset = encryption.Keyring.Get(Keyring.FieldsKeyset);
        var email = encryption.Encryptor(new FieldContext("acme", "accounts", "email"));
        var national = encryption.DeterministicEncryptor(new FieldContext("acme", "accounts", "national_id"));
        Assert.Equal(expectedRows, rows.Count);
        foreach (var (id, emailCiphertext, nationalCiphertext) in rows)
        {
            Assert.Equal(keyset.PrimaryVersion, FieldCiphertext.Inspect(emailCiphertext).KeyVersion);
            Assert.Equal(keyset.PrimaryVersion, FieldCiphertext.Inspect(nationalCiphertext).KeyVersion);
            Assert.Equal($"user{id}@example.com", email.DecryptString(emailCiphertext, id.ToString(CultureInfo.InvariantCulture)));
            Assert.Equal($"ID{id:000000}", national.DecryptString(nationalCiphertext));
        }
    }

    internal static async Task<List<(long Id, byte[] Email, byte[] National)>> ReadAllAsync(DbConnection connection)
    {
        if (connection.State != System.Data.ConnectionState.Open)
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
        }

        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, email, national_id FROM accounts ORDER BY id";
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var rows = new List<(long, byte[], byte[])>();
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            rows.Add((reader.GetInt64(0), (byte[])reader.GetValue(1), (byte[])reader.GetValue(2)));
        }

        return rows;
    }

    internal static DbConnection Open(Store store, string connectionString) =>
        store == Store.Sqlite ? new SqliteConnection(connectionString) : new NpgsqlConnection(connectionString);

    private async Task<string> CreateDatabaseAsync(Store store)
    {
        string connectionString;
        var options = new DbContextOptionsBuilder<CryptoDbContext>();
        if (store == Store.Sqlite)
        {
            connectionString = $"Data Source={Path.Combine(_directory, "crm.db")}";
            options.UseSqlite(connectionString);
        }
        else
        {
            _postgres = await PostgresDatabase.CreateAsync(cancellationToken: TestContext.Current.CancellationToken);
            connectionString = _postgres.ConnectionString;
            options.UseNpgsql(connectionString);
        }

        await using var context = new CryptoDbContext(options.Options);
        await context.Database.EnsureCreatedAsync(TestContext.Current.CancellationToken);
        return connectionString;
    }

    private static void Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    private sealed class RowComparer : IEqualityComparer<(long Id, byte[] Email, byte[] National)>
    {
        public bool Equals((long Id, byte[] Email, byte[] National) x, (long Id, byte[] Email, byte[] National) y) =>
            x.Id == y.Id && x.Email.AsSpan().SequenceEqual(y.Email) && x.National.AsSpan().SequenceEqual(y.National);

        public int GetHashCode((long Id, byte[] Email, byte[] National) obj) => obj.Id.GetHashCode();
    }
}
