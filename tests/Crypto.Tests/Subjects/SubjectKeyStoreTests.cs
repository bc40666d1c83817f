using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Subjects;
using CrmSecurity.Crypto.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Crypto.Tests.Subjects;

public sealed class SubjectKeyStoreTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-subjects-").FullName;
    private readonly RecordingEventSink _events = new();
    private DbContextOptions<CryptoDbContext> _options = null!;

    [Fact]
    public async Task After_rotation_rewrapping_moves_every_subject_key_to_the_new_version_so_the_old_one_can_go()
    {
        using var original = KeysetBuilder.CreateNew("fields").Build();
        var before = new SubjectKeyStore(Context, original, _events);
        byte[] ciphertext;
        using (var key = await before.GetOrCreateAsync("acme", "p1", TestContext.Current.CancellationToken))
        using (var encryptor = key.CreateFieldEncryptor(new FieldContext("acme", "people", "notes")))
        {
            ciphertext = encryptor.EncryptString("kept through rotation", "p1");
        }

        await before.GetOrCreateAsync("acme", "p2", TestContext.Current.CancellationToken);
        await before.ShredAsync("acme", "p2", "dpo", TestContext.Current.CancellationToken);
        using var rotated = TestKeys.Rotated(original);
        var after = new SubjectKeyStore(Context, rotated, _events);

        Assert.Equal(1, await after.RewrapAsync(TestContext.Current.CancellationToken));
        Assert.Equal(0, await after.RewrapAsync(TestContext.Current.CancellationToken));

        var withoutOld = KeysetBuilder.From(rotated);
        withoutOld.Destroy(1);
        using var onlyNew = withoutOld.Build();
        using var reread = await new SubjectKeyStore(Context, onlyNew, _events).FindAsync("acme", "p1", TestContext.Current.CancellationToken);
        using var again = reread!.CreateFieldEncryptor(new FieldContext("acme", "people", "notes"));
        Assert.Equal("kept through rotation", again.DecryptString(ciphertext, "p1"));
    }

    [Fact]
    public async Task A_wrapped_subject_key_copied_to_another_subject_is_refused()
    {
        using var fields = KeysetBuilder.CreateNew("fields").Build();
        var store = new SubjectKeyStore(Context, fields, _events);
        await store.GetOrCreateAsync("acme", "p1", TestContext.Current.CancellationToken);
        await store.GetOrCreateAsync("acme", "p2", TestContext.Current.CancellationToken);
        await using (var context = Context())
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
        using var fields = KeysetBuilder.CreateNew("fields").Build();
        var store = new SubjectKeyStore(Context, fields, _events);
        await store.ShredAsync("acme", "p9", "dpo", TestContext.Current.CancellationToken);

        var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => store.GetOrCreateAsync("acme", "p9", TestContext.Current.CancellationToken));

        Assert.Equal(DecryptFailureReason.SubjectShredded, error.Reason);
        Assert.Single(_events.Events);
    }

    public async ValueTask InitializeAsync()
    {
        _options = new DbContextOptionsBuilder<CryptoDbContext>().UseSqlite($"Data Source={Path.Combine(_directory, "keys.db")}").Options;
        await using var context = Context();
        await context.Database.EnsureCreatedAsync(TestContext.Current.CancellationToken);
    }

    public ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }

    private CryptoDbContext Context() => new(_options);
}
