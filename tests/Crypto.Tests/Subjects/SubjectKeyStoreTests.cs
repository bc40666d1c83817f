using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Subjects;
using CrmSecurity.Crypto.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Crypto.Tests.Subjects;

/// <summary>The subject-key store on real SQLite files: a key store beside the keyring, and a data database for tombstones.</summary>
public sealed class SubjectKeyStoreTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-subjects-").FullName;
    private readonly RecordingEventSink _events = new();
    private readonly Keyset _subjects = KeysetBuilder.CreateNew("subjects").Build();

    private string KeyStorePath => Path.Combine(_directory, "subject-keys.db");

    private string DataPath => Path.Combine(_directory, "data.db");

    [Fact]
    public async Task After_rotation_rewrapping_moves_every_subject_key_to_the_new_version_so_the_old_one_can_go()
    {
        var before = Store(_subjects);
        byte[] ciphertext;
        using (var key = await before.GetOrCreateAsync("acme", "p1", TestContext.Current.CancellationToken))
        using (var encryptor = key.CreateFieldEncryptor(new FieldContext("acme", "people", "notes")))
        {
            ciphertext = encryptor.EncryptString("kept through rotation", "p1");
        }

        await before.GetOrCreateAsync("acme", "p2", TestContext.Current.CancellationToken);
        await before.ShredAsync("acme", "p2", "dpo", TestContext.Current.CancellationToken);
        using var rotated = TestKeys.Rotated(_subjects);
        var after = Store(rotated);

        Assert.Equal(1, await after.RewrapAsync(TestContext.Current.CancellationToken));
        Assert.Equal(0, await after.RewrapAsync(TestContext.Current.CancellationToken));

        var withoutOld = KeysetBuilder.From(rotated);
        withoutOld.Destroy(1);
        using var onlyNew = withoutOld.Build();
        using var reread = await Store(onlyNew).FindAsync("acme", "p1", TestContext.Current.CancellationToken);
        using var again = reread!.CreateFieldEncryptor(new FieldContext("acme", "people", "notes"));
        Assert.Equal("kept through rotation", again.DecryptString(ciphertext, "p1"));
    }

    [Fact]
    public async Task A_wrapped_subject_key_copied_to_another_subject_is_refused()
    {
        var store = Store(_subjects);
        await store.GetOrCreateAsync("acme", "p1", TestContext.Current.CancellationToken);
        await store.GetOrCreateAsync("acme", "p2", TestContext.Current.CancellationToken);
        await using (var context = KeyStore())
        {
            var p1 = await context.SubjectKeys.SingleAsync(k => k.SubjectId == "p1", TestContext.Current.CancellationToken);
            var p2 = await context.SubjectKeys.SingleAsync(k => k.SubjectId == "p2", TestContext.Current.CancellationToken);
            (p2.WrappedKey, p2.KeysetId) = (p1.WrappedKey, p1.KeysetId);
            await context.SaveChangesAsync(TestContext.Current.CancellationToken);
        }

        var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => store.FindAsync("acme", "p2", TestContext.Current.CancellationToken));

        Assert.Equal(DecryptFailureReason.RowMismatch, error.Reason);
    }

    [Fact]
    public async Task A_shredded_subject_never_gets_a_new_key()
    {
        var store = Store(_subjects);
        await store.ShredAsync("acme", "p9", "dpo", TestContext.Current.CancellationToken);

        var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => store.GetOrCreateAsync("acme", "p9", TestContext.Current.CancellationToken));

        Assert.Equal(DecryptFailureReason.SubjectShredded, error.Reason);
        Assert.Single(_events.Events);
    }

    [Fact]
    public async Task A_shred_records_a_tombstone_without_key_material_in_the_data_database_and_the_store()
    {
        var store = Store(_subjects);
        var wrapped = await WrappedKeyAsync(store, "p1");

        Assert.True(await store.ShredAsync("acme", "p1", "dpo", TestContext.Current.CancellationToken));

        await using var data = Data();
        var tombstone = await data.SubjectTombstones.SingleAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("acme", "p1"), (tombstone.Tenant, tombstone.SubjectId));
        await using var keys = KeyStore();
        var record = await keys.SubjectKeys.SingleAsync(TestContext.Current.CancellationToken);
        Assert.Null(record.WrappedKey);
        Assert.NotNull(record.ShreddedAt);
        Assert.False(Contains(await File.ReadAllBytesAsync(DataPath, TestContext.Current.CancellationToken), wrapped, window: 16));
    }

    // SQLite's rollback journal (the default for a file the host creates) and WAL mode (what EF Core's EnsureCreated
    // sets up) keep page copies in different places; both must end up without the key.
    [Theory]
    [InlineData("DELETE")]
    [InlineData("WAL")]
    public async Task The_bytes_of_a_shredded_key_are_overwritten_in_the_key_store_file_and_left_in_no_journal(string journalMode)
    {
        SqliteConnection.ClearAllPools(); // leaving WAL mode needs the only connection
        await using (var connection = new SqliteConnection($"Data Source={KeyStorePath}"))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = $"PRAGMA journal_mode = {journalMode};";
            Assert.Equal(journalMode, ((string)(await pragma.ExecuteScalarAsync(TestContext.Current.CancellationToken))!).ToUpperInvariant());
        }

        var store = Store(_subjects);
        for (var i = 0; i < 20; i++)
        {
            await WrappedKeyAsync(store, $"other-{i}");
        }

        var wrapped = await WrappedKeyAsync(store, "p1");
        Assert.True(Contains(KeyStoreFiles(), wrapped, window: wrapped.Length)); // the scan does see the key before the shred

        await store.ShredAsync("acme", "p1", "dpo", TestContext.Current.CancellationToken);

        // While the store is in use (pooled connections open) and after every connection is closed.
        Assert.False(Contains(KeyStoreFiles(), wrapped, window: 16));
        SqliteConnection.ClearAllPools();
        Assert.False(Contains(KeyStoreFiles(), wrapped, window: 16));
        using var other = await store.FindAsync("acme", "other-7", TestContext.Current.CancellationToken);
        Assert.NotNull(other); // the rest of the store is intact
    }

    [Fact]
    public async Task A_store_restored_from_a_backup_taken_before_a_shred_is_shredded_again_from_the_data_database_tombstones()
    {
        var store = Store(_subjects);
        await WrappedKeyAsync(store, "p1");
        await WrappedKeyAsync(store, "p2");
        var backup = await store.ExportAsync(TestContext.Current.CancellationToken);
        await store.ShredAsync("acme", "p1", "dpo", TestContext.Current.CancellationToken);

        // The key store is lost; a new one is filled from the backup.
        SqliteConnection.ClearAllPools();
        File.Delete(KeyStorePath);
        await CreateKeyStoreAsync();
        var restored = Store(_subjects);
        var merge = await restored.MergeAsync(backup, TestContext.Current.CancellationToken);
        using (var resurrected = await restored.FindAsync("acme", "p1", TestContext.Current.CancellationToken))
        {
            Assert.NotNull(resurrected); // what the re-application is for
        }

        var result = await restored.ReapplyShredsAsync([], "restorer", TestContext.Current.CancellationToken);

        Assert.Equal(new SubjectKeyMerge(2, 0), merge);
        Assert.Equal((1, 1, 0), (result.Recorded, result.KeysDestroyed, result.TombstonesAdded));
        Assert.Equal(DecryptFailureReason.SubjectShredded, (await Assert.ThrowsAsync<FieldDecryptionException>(() => restored.FindAsync("acme", "p1", TestContext.Current.CancellationToken))).Reason);
        using var p2 = await restored.FindAsync("acme", "p2", TestContext.Current.CancellationToken);
        Assert.NotNull(p2);
        Assert.Equal(0, (await restored.ReapplyShredsAsync([], "restorer", TestContext.Current.CancellationToken)).Reapplied);
        Assert.Contains(_events.Events, e => e.UserId == "restorer" && e.RecordId == "p1" && e.Privilege == "crypto_shred");
    }

    [Fact]
    public async Task Shreds_read_from_the_access_event_log_are_reapplied_when_the_data_database_lost_its_tombstones()
    {
        var log = Path.Combine(_directory, "events.jsonl");
        using var sink = new JsonLinesEventSink(log);
        var store = new SubjectKeyStore(KeyStore, _subjects, sink, dataDatabase: null);
        await WrappedKeyAsync(store, "p1");
        var backup = await store.ExportAsync(TestContext.Current.CancellationToken);
        await store.ShredAsync("acme", "p1", "dpo", TestContext.Current.CancellationToken);
        await File.AppendAllTextAsync(log, "{\"timestamp\":\"2026-11-2", TestContext.Current.CancellationToken); // a torn last line

        SqliteConnection.ClearAllPools();
        File.Delete(KeyStorePath);
        await CreateKeyStoreAsync();
        var restored = new SubjectKeyStore(KeyStore, _subjects, sink, dataDatabase: null);
        await restored.MergeAsync(backup, TestContext.Current.CancellationToken);
        var shreds = await ShredLog.ReadAsync(log, TestContext.Current.CancellationToken);
        var result = await restored.ReapplyShredsAsync(shreds.Shreds, "restorer", TestContext.Current.CancellationToken);

        Assert.Equal([2], shreds.UnreadableLines);
        Assert.Equal(1, result.KeysDestroyed);
        Assert.Equal(DecryptFailureReason.SubjectShredded, (await Assert.ThrowsAsync<FieldDecryptionException>(() => restored.FindAsync("acme", "p1", TestContext.Current.CancellationToken))).Reason);
    }

    [Fact]
    public async Task Merging_a_backup_keeps_keys_made_after_it_and_never_turns_a_tombstone_back_into_a_key()
    {
        var store = Store(_subjects);
        await WrappedKeyAsync(store, "p1");
        var backup = await store.ExportAsync(TestContext.Current.CancellationToken);
        await store.ShredAsync("acme", "p1", "dpo", TestContext.Current.CancellationToken);
        var later = await WrappedKeyAsync(store, "p3");

        var merge = await store.MergeAsync(backup, TestContext.Current.CancellationToken);

        Assert.Equal(new SubjectKeyMerge(0, 1), merge);
        await Assert.ThrowsAsync<FieldDecryptionException>(() => store.FindAsync("acme", "p1", TestContext.Current.CancellationToken));
        Assert.Equal(later, await WrappedKeyAsync(store, "p3"));
    }

    [Fact]
    public async Task A_backup_whose_keys_do_not_unwrap_is_refused_before_anything_is_written()
    {
        var store = Store(_subjects);
        await WrappedKeyAsync(store, "p1");
        var backup = await store.ExportAsync(TestContext.Current.CancellationToken);
        backup[0].WrappedKey![^1] ^= 1;
        SqliteConnection.ClearAllPools();
        File.Delete(KeyStorePath);
        await CreateKeyStoreAsync();

        await Assert.ThrowsAsync<FieldDecryptionException>(() => Store(_subjects).MergeAsync(backup, TestContext.Current.CancellationToken));

        await using var keys = KeyStore();
        Assert.Empty(await keys.SubjectKeys.ToListAsync(TestContext.Current.CancellationToken));
    }

    public async ValueTask InitializeAsync()
    {
        await CreateKeyStoreAsync();
        await using var data = Data();
        await data.Database.EnsureCreatedAsync(TestContext.Current.CancellationToken);
    }

    public ValueTask DisposeAsync()
    {
        _subjects.Dispose();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }

    internal static bool Contains(byte[] haystack, byte[] needle, int window)
    {
        for (var start = 0; start + window <= needle.Length; start++)
        {
            if (haystack.AsSpan().IndexOf(needle.AsSpan(start, window)) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    private async Task CreateKeyStoreAsync()
    {
        await using var keys = KeyStore();
        await keys.Database.EnsureCreatedAsync(TestContext.Current.CancellationToken);
    }

    // The store file and whatever journal or log SQLite keeps beside it, read without locking them.
    private byte[] KeyStoreFiles() =>
    [
        .. new[] { "", "-journal", "-wal" }.Select(suffix => KeyStorePath + suffix).Where(File.Exists).SelectMany(ReadShared),
    ];

    private static byte[] ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static async Task<byte[]> WrappedKeyAsync(SubjectKeyStore store, string subject)
    {
        using (await store.GetOrCreateAsync("acme", subject, TestContext.Current.CancellationToken))
        {
        }

        return (await store.ExportAsync(TestContext.Current.CancellationToken)).Single(r => r.SubjectId == subject).WrappedKey!;
    }

    private SubjectKeyStore Store(Keyset subjects) => new(KeyStore, subjects, _events, Data);

    private SubjectKeyDbContext KeyStore() => new(new DbContextOptionsBuilder<SubjectKeyDbContext>().UseSqlite($"Data Source={KeyStorePath}").Options);

    private CryptoDbContext Data() => new(new DbContextOptionsBuilder<CryptoDbContext>().UseSqlite($"Data Source={DataPath}").Options);
}
