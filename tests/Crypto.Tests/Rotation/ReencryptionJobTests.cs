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

    private static readonly ReencryptionTable TextTable = Table with { Table = "contacts" };

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

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task Text_form_values_are_reencrypted_under_the_new_key_and_stay_text(Store store)
    {
        var connectionString = await CreateDatabaseAsync(store);
        using var original = Keyring.CreateNew();
        await FillTextAsync(store, connectionString, original, Rows);
        using var rotated = new FieldEncryption(original.With(TestKeys.Rotated(original.Get(Keyring.FieldsKeyset))), null, _events);
        await using var connection = Open(store, connectionString);

        var result = await new ReencryptionJob(rotated, TextTable, 64).RunAsync(connection, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal((2 * Rows) - TextNulls(Rows), result.ValuesRewritten);
        Assert.Equal(TextNulls(Rows), result.ValuesEmpty);
        Assert.Equal(0, result.ValuesFailed + result.ValuesNotCiphertext);
        await AssertAllTextUnderPrimaryAsync(store, connectionString, rotated, Rows);
    }

    [Fact]
    public async Task Every_value_is_counted_by_what_happened_to_it_and_keeps_its_form()
    {
        var connectionString = await CreateDatabaseAsync(Store.Sqlite);
        using var original = Keyring.CreateNew();
        using var rotated = new FieldEncryption(original.With(TestKeys.Rotated(original.Get(Keyring.FieldsKeyset))), null, _events);
        using var old = new FieldEncryption(Keyring.Of(original.Keysets.Select(k => KeysetBuilder.From(k).Build()).ToList()), null, new RecordingEventSink());
        using var foreign = Keyring.CreateNew();
        var context = new FieldContext("acme", "mixed", "email");
        var oldText = old.Encryptor(context).EncryptText("two@example.com", "2");
        // A column without a declared type: SQLite keeps each value's storage class (BLOB or TEXT), as a column mid-migration would.
        var values = new Dictionary<long, object?>
        {
            [1] = old.Encryptor(context).EncryptString("one@example.com", "1"),
            [2] = oldText,
            [3] = rotated.Encryptor(context).EncryptString("three@example.com", "3"),
            [4] = rotated.Encryptor(context).EncryptText("four@example.com", "4"),
            [5] = null,
            [6] = string.Empty,
            [7] = Array.Empty<byte>(),
            [8] = "alice@example.com",
            [9] = oldText, // another row's ciphertext: the row check fails
            [10] = foreign.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(context).EncryptString("ten@example.com", "10"),
            [11] = 42L,
            [12] = "cf1:not+base64",
            [13] = old.DeterministicEncryptor(context).EncryptText("thirteen"),
            [14] = old.DeterministicEncryptor(context).EncryptString("fourteen"),
        };
        await using var connection = Open(Store.Sqlite, connectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await ExecuteAsync(connection, "CREATE TABLE mixed (id INTEGER PRIMARY KEY, email)");
        foreach (var (id, value) in values)
        {
            await using var insert = connection.CreateCommand();
            insert.CommandText = "INSERT INTO mixed (id, email) VALUES (@id, @email)";
            Add(insert, "@id", id);
            Add(insert, "@email", value ?? DBNull.Value);
            await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        var table = new ReencryptionTable("acme", "mixed", "id", RowKeyKind.Number, [new ReencryptionColumn("email", "email")]);
        var result = await new ReencryptionJob(rotated, table, 4).RunAsync(connection, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(values.Count, result.RowsDone);
        Assert.Equal(4, result.ValuesRewritten);      // 1, 2, 13, 14
        Assert.Equal(2, result.ValuesCurrent);        // 3, 4
        Assert.Equal(3, result.ValuesEmpty);          // 5, 6, 7
        Assert.Equal(1, result.ValuesOtherKeyset);    // 10
        Assert.Equal(2, result.ValuesFailed);         // 9, 12
        Assert.Equal(2, result.ValuesNotCiphertext);  // 8, 11
        Assert.Equal(
            [
                "mixed.email, row 8: not a ciphertext (neither the binary form nor the cf1: text form); left unchanged",
                "mixed.email, row 9: could not be decrypted (RowMismatch); left unchanged",
                "mixed.email, row 11: not a ciphertext (neither the binary form nor the cf1: text form); left unchanged",
                "mixed.email, row 12: could not be decrypted (InvalidEncoding); left unchanged",
            ],
            result.Problems);

        var after = new Dictionary<long, object?>();
        await using (var select = connection.CreateCommand())
        {
            select.CommandText = "SELECT id, email FROM mixed";
            await using var reader = await select.ExecuteReaderAsync(TestContext.Current.CancellationToken);
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
            {
                after[reader.GetInt64(0)] = reader.IsDBNull(1) ? null : reader.GetValue(1);
            }
        }

        var primary = rotated.Keyring.Get(Keyring.FieldsKeyset).PrimaryVersion;
        var binary = Assert.IsType<byte[]>(after[1]);
        Assert.Equal(primary, FieldCiphertext.Inspect(binary).KeyVersion);
        Assert.Equal("one@example.com", rotated.Encryptor(context).DecryptString(binary, "1"));
        var text = Assert.IsType<string>(after[2]);
        Assert.Equal(primary, FieldCiphertext.Inspect(FieldText.Decode(text)).KeyVersion);
        Assert.Equal("two@example.com", rotated.Encryptor(context).DecryptText(text, "2"));
        var deterministicText = Assert.IsType<string>(after[13]);
        Assert.Equal(rotated.DeterministicEncryptor(context).EncryptText("thirteen"), deterministicText);
        var deterministicBinary = Assert.IsType<byte[]>(after[14]);
        Assert.Equal(rotated.DeterministicEncryptor(context).EncryptString("fourteen"), deterministicBinary);
        foreach (var unchanged in new long[] { 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 })
        {
            Assert.Equal(values[unchanged], after[unchanged]);
        }
    }

    [Fact]
    public async Task A_value_that_cannot_be_decrypted_is_reported_by_every_later_run_too()
    {
        var connectionString = await CreateDatabaseAsync(Store.Sqlite);
        using var original = Keyring.CreateNew();
        await FillAsync(Store.Sqlite, connectionString, original);
        await using var connection = Open(Store.Sqlite, connectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await ExecuteAsync(connection, "UPDATE accounts SET email = (SELECT email FROM accounts WHERE id = 2) WHERE id = 1");
        using var rotated = new FieldEncryption(original.With(TestKeys.Rotated(original.Get(Keyring.FieldsKeyset))), null, _events);

        // Killed after its first batch (which holds the bad value) was committed: the run that resumes must not forget it.
        var crashing = new ReencryptionJob(rotated, Table, 100) { BeforeCommit = batch => { if (batch == 2) { throw new IOException("simulated crash"); } } };
        await Assert.ThrowsAsync<IOException>(() => crashing.RunAsync(connection, cancellationToken: TestContext.Current.CancellationToken));
        var resumed = await new ReencryptionJob(rotated, Table, 100).RunAsync(connection, cancellationToken: TestContext.Current.CancellationToken);
        var again = await new ReencryptionJob(rotated, Table, 100).RunAsync(connection, cancellationToken: TestContext.Current.CancellationToken);

        foreach (var run in new[] { resumed, again })
        {
            Assert.Equal(1, run.ValuesFailed);
            Assert.Equal(["accounts.email, row 1: could not be decrypted (RowMismatch); left unchanged"], run.Problems);
            Assert.Equal(2 * Rows, run.ValuesRewritten + run.ValuesCurrent + run.ValuesFailed);
        }

        Assert.Equal(0, again.ValuesRewritten);
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

    /// <summary>Every tenth row's email is NULL, so a job over the table sees values of both kinds.</summary>
    internal static int TextNulls(int rows) => rows / 10;

    /// <summary>
    /// A table of text-form ciphertexts (<c>cf1:</c>...), as the HTTP encryption service returns them and a CRM
    /// keeps them in string columns: <c>contacts(id, email text randomized, national_id text deterministic)</c>.
    /// </summary>
    internal static async Task FillTextAsync(Store store, string connectionString, Keyring keyring, int rows)
    {
        await using var connection = Open(store, connectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await ExecuteAsync(connection, store == Store.Sqlite
            ? "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, national_id TEXT)"
            : "CREATE TABLE contacts (id bigint PRIMARY KEY, email text, national_id text)");
        using var encryption = new FieldEncryption(Keyring.Of(keyring.Keysets.Select(k => KeysetBuilder.From(k).Build()).ToList()), null, new RecordingEventSink());
        var email = encryption.Encryptor(new FieldContext("acme", "contacts", "email"));
        var national = encryption.DeterministicEncryptor(new FieldContext("acme", "contacts", "national_id"));
        await using var transaction = await connection.BeginTransactionAsync(TestContext.Current.CancellationToken);
        for (var id = 1; id <= rows; id++)
        {
            await using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO contacts (id, email, national_id) VALUES (@id, @email, @national)";
            Add(insert, "@id", (long)id);
            Add(insert, "@email", id % 10 == 0 ? DBNull.Value : email.EncryptText($"user{id}@example.com", id.ToString(CultureInfo.InvariantCulture)));
            Add(insert, "@national", national.EncryptText($"ID{id:000000}"));
            await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        await transaction.CommitAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>Every value of <c>contacts</c> is still text, names the primary version in its header and decrypts to what was written.</summary>
    internal static async Task AssertAllTextUnderPrimaryAsync(Store store, string connectionString, FieldEncryption encryption, int expectedRows)
    {
        await using var connection = Open(store, connectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        var primary = encryption.Keyring.Get(Keyring.FieldsKeyset).PrimaryVersion;
        var email = encryption.Encryptor(new FieldContext("acme", "contacts", "email"));
        var national = encryption.DeterministicEncryptor(new FieldContext("acme", "contacts", "national_id"));
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, email, national_id FROM contacts ORDER BY id";
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var count = 0;
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            count++;
            var id = reader.GetInt64(0);
            var row = id.ToString(CultureInfo.InvariantCulture);
            if (id % 10 == 0)
            {
                Assert.True(reader.IsDBNull(1));
            }
            else
            {
                var emailText = Assert.IsType<string>(reader.GetValue(1));
                Assert.Equal(primary, FieldCiphertext.Inspect(FieldText.Decode(emailText)).KeyVersion);
                Assert.Equal($"user{id}@example.com", email.DecryptText(emailText, row));
            }

            var nationalText = Assert.IsType<string>(reader.GetValue(2));
            var header = FieldCiphertext.Inspect(FieldText.Decode(nationalText));
            Assert.Equal(primary, header.KeyVersion);
            Assert.Equal(EncryptionMode.Deterministic, header.Mode);
            Assert.Equal($"ID{id:000000}", national.DecryptText(nationalText));
        }

        Assert.Equal(expectedRows, count);
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

    private static async Task ExecuteAsync(DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
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
