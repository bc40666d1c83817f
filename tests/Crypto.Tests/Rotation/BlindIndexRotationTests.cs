using System.Data.Common;
using System.Globalization;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Rotation;
using CrmSecurity.Crypto.Subjects;
using CrmSecurity.Crypto.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Crypto.Tests.Rotation;

/// <summary>Rotation of the blind-index keyset: the recompute job, the window in which lookups try both versions, the switch-over.</summary>
public sealed class BlindIndexRotationTests : IDisposable
{
    private const int Rows = 300;
    private static readonly BlindIndexDefinition Email = new("email_eq", 20, Normaliser.Email);
    private static readonly BlindIndexTable Table = new("acme", "contacts", "id", RowKeyKind.Number, [new BlindIndexColumn("email_bidx", "email", "email", Email)]);
    private static readonly FieldContext Context = new("acme", "contacts", "email");

    private readonly string _directory = Directory.CreateTempSubdirectory("crm-bidx-rotation-").FullName;
    private readonly RecordingEventSink _events = new();

    private string ConnectionString => $"Data Source={Path.Combine(_directory, "crm.db")}";

    [Fact]
    public async Task A_recompute_killed_mid_job_resumes_and_leaves_every_index_under_the_staged_version()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var original = Keyring.CreateNew();
        await CreateAsync(original);
        using var staged = new FieldEncryption(Stage(original), null, _events);

        // Killed (as a crash would) inside the third batch's transaction: two batches are committed with their checkpoint.
        var crashing = new BlindIndexRecomputeJob(staged, Table, batchSize: 50) { BeforeCommit = batch => { if (batch == 3) { throw new IOException("simulated crash"); } } };
        await using (var connection = new SqliteConnection(ConnectionString))
        {
            await Assert.ThrowsAsync<IOException>(() => crashing.RunAsync(connection, cancellationToken: cancellationToken));
        }

        var halfway = await ScanAsync(staged);
        Assert.Equal(100, halfway.FoundUnder.GetValueOrDefault(2u));
        Assert.Equal(Rows - 100, halfway.FoundUnder.GetValueOrDefault(1u));
        Assert.False(await CompletedAsync(crashing.JobName));

        BlindIndexRecomputeProgress result;
        await using (var connection = new SqliteConnection(ConnectionString))
        {
            result = await new BlindIndexRecomputeJob(staged, Table, batchSize: 50).RunAsync(connection, cancellationToken: cancellationToken);
        }

        // The resumed run did the rest, then looked back over the rows the killed run committed: every row is counted.
        Assert.Equal(Rows, result.RowsDone);
        Assert.Equal(Rows - 100, result.Rewritten);
        Assert.Equal(Rows, result.FoundUnder.Values.Sum());
        Assert.Equal(0, result.Failed);
        Assert.True(await CompletedAsync(crashing.JobName));
        Assert.Equal(new Dictionary<uint, long> { [2] = Rows }, (await ScanAsync(staged)).FoundUnder);
    }

    [Fact]
    public async Task During_the_window_lookups_find_every_row_under_the_old_or_the_new_version()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var original = Keyring.CreateNew();
        await CreateAsync(original);
        using var staged = new FieldEncryption(Stage(original), null, _events);
        var crashing = new BlindIndexRecomputeJob(staged, Table, batchSize: 100) { BeforeCommit = batch => { if (batch == 2) { throw new IOException("simulated crash"); } } };
        await using (var connection = new SqliteConnection(ConnectionString))
        {
            await Assert.ThrowsAsync<IOException>(() => crashing.RunAsync(connection, cancellationToken: cancellationToken));
        }

        // The application keeps writing under the primary (version 1) while the job has moved some rows to version 2.
        Assert.Equal(1u, staged.BlindIndex(Context, Email).KeyVersion);
        await InsertAsync(staged, Rows + 1);
        var scan = await ScanAsync(staged);
        Assert.True(scan.FoundUnder[1] > 0 && scan.FoundUnder[2] > 0, "the table holds both versions");

        Assert.Equal([1u, 2u], staged.LookupIndexes(Context, Email).Select(i => i.KeyVersion));
        for (var id = 1; id <= Rows + 1; id++)
        {
            Assert.Contains(id, await LookupAsync(staged, Address(id)));
        }
    }

    [Fact]
    public async Task After_the_switch_over_the_old_version_is_unused_and_lookups_use_only_the_new_one()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var original = Keyring.CreateNew();
        await CreateAsync(original);
        var stagedKeyring = Stage(original);
        using var staged = new FieldEncryption(stagedKeyring, null, _events);
        await using (var connection = new SqliteConnection(ConnectionString))
        {
            await new BlindIndexRecomputeJob(staged, Table).RunAsync(connection, cancellationToken: cancellationToken);
        }

        // A row the application wrote under version 1 after the job passed, before the promotion reached it.
        await InsertAsync(staged, Rows + 1);

        // Switch-over: version 2 is promoted, the job runs again (its look-back moves the late row), version 1 is destroyed.
        using var promoted = new FieldEncryption(Promote(stagedKeyring), null, _events);
        Assert.Equal(2u, promoted.BlindIndex(Context, Email).KeyVersion);
        Assert.Equal([2u, 1u], promoted.LookupIndexes(Context, Email).Select(i => i.KeyVersion));
        Assert.Contains(Rows + 1, await LookupAsync(promoted, Address(Rows + 1)));
        await using (var connection = new SqliteConnection(ConnectionString))
        {
            var again = await new BlindIndexRecomputeJob(promoted, Table).RunAsync(connection, cancellationToken: cancellationToken);
            Assert.Equal(1, again.Rewritten);
        }

        Assert.Equal(new Dictionary<uint, long> { [2] = Rows + 1 }, (await ScanAsync(promoted)).FoundUnder);
        using var destroyed = new FieldEncryption(DestroyOld(promoted.Keyring), null, _events);
        Assert.Equal([2u], destroyed.LookupIndexes(Context, Email).Select(i => i.KeyVersion));
        // A 20-bit index collides now and then (about one pair in 12 runs of 301 rows): a lookup returns exactly the rows
        // whose version-2 index equals the address's, which is the row itself plus any true collision, never a version-1 match.
        var index = destroyed.LookupIndexes(Context, Email).Single();
        var byIndex = Enumerable.Range(1, Rows + 1).ToLookup(id => Convert.ToHexString(index.Compute(Address(id))));
        for (var id = 1; id <= Rows + 1; id++)
        {
            Assert.Equal(byIndex[Convert.ToHexString(index.Compute(Address(id)))].Select(x => (long)x), await LookupAsync(destroyed, Address(id)));
        }
    }

    [Fact]
    public async Task A_value_that_cannot_be_decrypted_is_named_by_row_and_its_index_left_alone()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var original = Keyring.CreateNew();
        await CreateAsync(original, rows: 3);
        await ExecuteAsync("UPDATE contacts SET email = X'00112233' WHERE id = 2");
        using var staged = new FieldEncryption(Stage(original), null, _events);

        BlindIndexRecomputeProgress result;
        await using (var connection = new SqliteConnection(ConnectionString))
        {
            result = await new BlindIndexRecomputeJob(staged, Table).RunAsync(connection, cancellationToken: cancellationToken);
        }

        Assert.Equal(1, result.Failed);
        Assert.Equal(2, result.Rewritten);
        Assert.Contains(result.Problems, p => p.StartsWith("contacts.email, row 2: could not be decrypted", StringComparison.Ordinal));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    internal static string Address(int id) => string.Create(CultureInfo.InvariantCulture, $"Person{id}@Example.org");

    /// <summary>The keyring with a staged (active, not primary) version 2 of the blind-index keyset.</summary>
    private static Keyring Stage(Keyring keyring)
    {
        var builder = KeysetBuilder.From(keyring.Get(Keyring.BlindIndexKeyset));
        builder.AddVersion(makePrimary: false);
        return keyring.With(builder.Build());
    }

    private static Keyring Promote(Keyring keyring)
    {
        var builder = KeysetBuilder.From(keyring.Get(Keyring.BlindIndexKeyset));
        builder.SetPrimary(2);
        return keyring.With(builder.Build());
    }

    private static Keyring DestroyOld(Keyring keyring) => keyring.With(KeysetBuilder.From(keyring.Get(Keyring.BlindIndexKeyset)).Destroy(1).Build());

    private async Task CreateAsync(Keyring keyring, int rows = Rows)
    {
        var options = new DbContextOptionsBuilder<CryptoDbContext>().UseSqlite(ConnectionString).Options;
        await using (var context = new CryptoDbContext(options))
        {
            await context.Database.EnsureCreatedAsync(TestContext.Current.CancellationToken);
        }

        await ExecuteAsync("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email BLOB, email_bidx BLOB)");
        using var encryption = new FieldEncryption(keyring.With(KeysetBuilder.From(keyring.Get(Keyring.FieldsKeyset)).Build()), null, _events);
        for (var id = 1; id <= rows; id++)
        {
            await InsertAsync(encryption, id);
        }
    }

    // What the application writes: the value encrypted under fields, its index under the blind-index primary.
    private async Task InsertAsync(FieldEncryption encryption, int id)
    {
        await using var connection = new SqliteConnection(ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO contacts (id, email, email_bidx) VALUES ($id, $email, $index)";
        insert.Parameters.AddWithValue("$id", id);
        insert.Parameters.AddWithValue("$email", encryption.Encryptor(Context).EncryptString(Address(id), id.ToString(CultureInfo.InvariantCulture)));
        insert.Parameters.AddWithValue("$index", encryption.BlindIndex(Context, Email).Compute(Address(id)));
        await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }

    // A lookup as an application makes it: WHERE index IN (the value's index under every version a lookup tries).
    private async Task<List<long>> LookupAsync(FieldEncryption encryption, string value)
    {
        var candidates = encryption.LookupIndexes(Context, Email).Select(i => i.Compute(value)).ToList();
        await using var connection = new SqliteConnection(ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = $"SELECT id FROM contacts WHERE email_bidx IN ({string.Join(", ", candidates.Select((_, i) => "$p" + i.ToString(CultureInfo.InvariantCulture)))}) ORDER BY id";
        for (var i = 0; i < candidates.Count; i++)
        {
            select.Parameters.AddWithValue("$p" + i.ToString(CultureInfo.InvariantCulture), candidates[i]);
        }

        var ids = new List<long>();
        await using var reader = await select.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            ids.Add(reader.GetInt64(0));
        }

        return ids;
    }

    private async Task<BlindIndexRecomputeProgress> ScanAsync(FieldEncryption encryption)
    {
        await using var connection = new SqliteConnection(ConnectionString);
        return await new BlindIndexRecomputeJob(encryption, Table).RunAsync(connection, dryRun: true, cancellationToken: TestContext.Current.CancellationToken);
    }

    private async Task<bool> CompletedAsync(string job)
    {
        await using var connection = new SqliteConnection(ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        var (_, _, completed) = await CheckpointedTableScan.ReadCheckpointAsync(connection, job, TestContext.Current.CancellationToken);
        return completed;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using DbConnection connection = new SqliteConnection(ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }
}
