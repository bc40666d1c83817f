using System.Data.Common;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Rotation;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Crypto.Benchmarks;

/// <summary>
/// The re-encryption job (batches of 1,000, its default) over 10,000 rows (one randomized column, all under the old key version) against a raw
/// loop over the same rows in the same SQLite database: read every row, decrypt and re-encrypt with the same
/// encryptor, update it, all in one transaction, with no checkpoint, no batching and no concurrency check.
/// Each invocation starts from the same table (restored in IterationSetup, not measured).
/// </summary>
public class ReencryptionBenchmarks
{
    private const int Rows = 10_000;
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"crm-bench-{Guid.NewGuid():N}.db");
    private SqliteConnection _connection = null!;
    private FieldEncryption _encryption = null!;
    private FieldEncryptor _encryptor = null!;

    [GlobalSetup]
    public void Setup()
    {
        using var original = Keyring.CreateNew();
        var fields = original.Get(Keyring.FieldsKeyset);
        _connection = new SqliteConnection($"Data Source={_path}");
        _connection.Open();
        Execute("CREATE TABLE crypto_reencryption_checkpoints (job TEXT PRIMARY KEY, last_key TEXT, rows_done INTEGER NOT NULL, completed INTEGER NOT NULL, updated_at TEXT NOT NULL)");
        Execute("CREATE TABLE template (id INTEGER PRIMARY KEY, email BLOB)");
        Execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, email BLOB)");
        using (var encryptor = fields.CreateFieldEncryptor(new FieldContext("acme", "accounts", "email")))
        using (var transaction = _connection.BeginTransaction())
        {
            for (var id = 1; id <= Rows; id++)
            {
                using var insert = _connection.CreateCommand();
                insert.Transaction = transaction;
                insert.CommandText = "INSERT INTO template (id, email) VALUES ($id, $email)";
                insert.Parameters.AddWithValue("$id", id);
                insert.Parameters.AddWithValue("$email", encryptor.EncryptString($"user{id}@example.com", id.ToString(CultureInfo.InvariantCulture)));
                insert.ExecuteNonQuery();
            }

            transaction.Commit();
        }

        var builder = KeysetBuilder.From(fields);
        builder.AddVersion();
        _encryption = new FieldEncryption(original.With(builder.Build()), null, new NullSink());
        _encryptor = _encryption.Encryptor(new FieldContext("acme", "accounts", "email"));
    }

    [IterationSetup]
    public void Reset()
    {
        Execute("DELETE FROM accounts");
        Execute("INSERT INTO accounts SELECT * FROM template");
        Execute("DELETE FROM crypto_reencryption_checkpoints");
    }

    [Benchmark(Baseline = true)]
    public int RawDecryptEncryptLoop()
    {
        var rows = new List<(long Id, byte[] Email)>(Rows);
        using (var select = _connection.CreateCommand())
        {
            select.CommandText = "SELECT id, email FROM accounts ORDER BY id";
            using var reader = select.ExecuteReader();
            while (reader.Read())
            {
                rows.Add((reader.GetInt64(0), (byte[])reader.GetValue(1)));
            }
        }

        using var transaction = _connection.BeginTransaction();
        using var update = _connection.CreateCommand();
        update.Transaction = transaction;
        update.CommandText = "UPDATE accounts SET email = $email WHERE id = $id";
        var email = update.Parameters.Add("$email", SqliteType.Blob);
        var id = update.Parameters.Add("$id", SqliteType.Integer);
        foreach (var row in rows)
        {
            var rowId = row.Id.ToString(CultureInfo.InvariantCulture);
            email.Value = _encryptor.Encrypt(_encryptor.Decrypt(row.Email, rowId), rowId);
            id.Value = row.Id;
            update.ExecuteNonQuery();
        }

        transaction.Commit();
        return rows.Count;
    }

    [Benchmark]
    public long ReencryptionJob()
    {
        var table = new ReencryptionTable("acme", "accounts", "id", RowKeyKind.Number, [new ReencryptionColumn("email", "email")]);
        return new ReencryptionJob(_encryption, table, batchSize: 1000).RunAsync(_connection).GetAwaiter().GetResult().ValuesRewritten;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _encryption.Dispose();
        _connection.Dispose();
        SqliteConnection.ClearAllPools();
        File.Delete(_path);
    }

    private void Execute(string sql)
    {
        using DbCommand command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private sealed class NullSink : ICryptoEventSink
    {
        public ValueTask WriteAsync(CryptoAccessEvent accessEvent, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }
}
