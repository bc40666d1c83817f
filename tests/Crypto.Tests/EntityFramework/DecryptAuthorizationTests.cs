using System.Collections.Concurrent;
using CrmSecurity.Crypto.EntityFramework;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

namespace CrmSecurity.Crypto.Tests.EntityFramework;

/// <summary>
/// Red-team finding 14 (library): <c>FieldEncryptionInterceptor</c> decrypted every encrypted column of every row it
/// materialized, with no check and no audit. Now each value goes through the context's <see cref="IFieldDecryptAuthorizer"/>
/// before it is decrypted (none configured: nothing is decrypted), every decision is a <c>decrypt</c> access event written
/// before the plaintext reaches the entity, and a withheld value is neither decrypted nor lost when the entity is saved.
/// </summary>
public sealed class DecryptAuthorizationTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-ef-authz-").FullName;
    private readonly RecordingEventSink _events = new();
    private FieldEncryption? _encryption;
    private DbContextOptions<CrmContext>? _options;
    private string _keyringPath = "";
    private LocalMasterKey? _kek;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Without_an_authorizer_nothing_is_decrypted_and_every_refusal_is_audited()
    {
        var contact = await StoreAsync(new Contact { Name = "Ada", Email = "ada@example.org", Phone = "+441632960001", Notes = "likes tea" });
        _events.Events.Clear();

        await using var context = new CrmContext(Options(authorizer: null));
        var read = await context.Contacts.SingleAsync(Cancel);

        Assert.Equal("Ada", read.Name);
        Assert.Equal((null, null, null), (read.Email, read.Phone, read.Notes));
        Assert.True(context.IsDecryptWithheld(read, nameof(Contact.Email)));
        var refusal = Assert.Single(_events.Events);
        Assert.Equal(("decrypt", "denied", "unknown", contact.Id.ToString(), "contacts"), (refusal.Action, refusal.Outcome, refusal.UserId, refusal.RecordId, refusal.Entity));
        Assert.Equal(["Email", "Phone", "Notes"], refusal.Fields);
    }

    [Fact]
    public async Task The_authorizer_decides_each_value_on_the_row_before_it_is_decrypted_and_each_outcome_is_one_event()
    {
        var mine = await StoreAsync(new Contact { Name = "Mine", Email = "mine@example.org", Phone = "+441632960002", NationalId = "AB123456C" });
        var theirs = await StoreAsync(new Contact { Name = "Theirs", Email = "theirs@example.org", Phone = "+441632960003" });
        _events.Events.Clear();
        var rules = new NameRules(readableRow: "Mine", readableFields: ["Email", "Phone"]);

        await using var context = new CrmContext(Options(rules));
        var rows = await context.Contacts.OrderBy(c => c.Name).ToListAsync(Cancel);

        Assert.Equal(("mine@example.org", "+441632960002", null), (rows[0].Email, rows[0].Phone, rows[0].NationalId));
        Assert.Equal((null, null), (rows[1].Email, rows[1].Phone));
        // The authorizer saw the entity with its mapped properties set, and the row id values are bound to.
        Assert.Contains(rules.Seen, r => r.RowId == mine.Id.ToString() && r.Name == "Mine" && r.Field == "Email");
        Assert.Contains(rules.Seen, r => r.RowId == theirs.Id.ToString() && r.Name == "Theirs");
        var events = _events.Events.ToList();
        var decrypted = Assert.Single(events, e => e.Outcome == "success");
        Assert.Equal((mine.Id.ToString(), "reader-1", "crm-app", "203.0.113.9"), (decrypted.RecordId, decrypted.UserId, decrypted.ClientId, decrypted.SourceIp));
        Assert.Equal(["Email", "Phone"], decrypted.Fields);
        Assert.Equal(["NationalId"], Assert.Single(events, e => e.Outcome == "denied" && e.RecordId == mine.Id.ToString()).Fields);
        Assert.Equal(["Email", "Phone"], Assert.Single(events, e => e.Outcome == "denied" && e.RecordId == theirs.Id.ToString()).Fields);
        Assert.All(events, e => Assert.DoesNotContain("example.org", JsonLinesEventSink.ToJsonLine(e), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Saving_an_entity_read_with_withheld_values_keeps_the_stored_ciphertexts()
    {
        var contact = await StoreAsync(new Contact { Name = "Grace", Email = "grace@example.org", Phone = "+441632960004" });
        await using (var context = new CrmContext(Options(new NameRules(readableRow: "Grace", readableFields: ["Phone"]))))
        {
            var read = await context.Contacts.SingleAsync(Cancel);
            Assert.Null(read.Email);
            read.Name = "Grace H.";
            read.Phone = "+441632960005";
            await context.SaveChangesAsync(Cancel);
        }

        await using var everything = new CrmContext(Options(FieldDecryptAuthorizer.AllowAll(new FieldReader("dpo"), "test: read back")));
        var again = await everything.Contacts.SingleAsync(c => c.Id == contact.Id, Cancel);

        Assert.Equal(("Grace H.", "grace@example.org", "+441632960005"), (again.Name, again.Email, again.Phone));
    }

    [Fact]
    public async Task An_authorizer_set_on_one_context_applies_to_that_context_only()
    {
        await StoreAsync(new Contact { Name = "Lin", Email = "lin@example.org" });
        await using var first = new CrmContext(Options(authorizer: null));
        await using var second = new CrmContext(Options(authorizer: null));

        first.UseDecryptAuthorizer(FieldDecryptAuthorizer.AllowAll(new FieldReader("batch-job"), "test: a job's context"));

        Assert.Equal("lin@example.org", (await first.Contacts.SingleAsync(Cancel)).Email);
        Assert.Null((await second.Contacts.SingleAsync(Cancel)).Email);
    }

    [Fact]
    public async Task When_the_audit_sink_fails_the_query_fails_and_no_plaintext_is_released()
    {
        await StoreAsync(new Contact { Name = "Sam", Email = "sam@example.org" });
        // The same keys, and an audit sink that cannot write.
        using var sameKeys = new FieldEncryption(KeyringCopy(), null, new FailingSink());
        var options = Options(sameKeys, FieldDecryptAuthorizer.AllowAll(new FieldReader("x"), "test"));

        await using var context = new CrmContext(options);
        Contact? read = null;
        await Assert.ThrowsAsync<IOException>(async () => read = await context.Contacts.SingleAsync(Cancel));

        Assert.Null(read);
    }

    public async ValueTask InitializeAsync()
    {
        _keyringPath = Path.Combine(_directory, "keyring.json");
        _kek = LocalMasterKey.Generate();
        using (var keyring = Keyring.CreateNew())
        {
            keyring.Save(_keyringPath, _kek);
        }

        _encryption = new FieldEncryption(KeyringCopy(), null, _events);
        _options = Options(FieldDecryptAuthorizer.AllowAll(new FieldReader("writer"), "test: writes"));
        await using var context = new CrmContext(_options);
        await context.GetService<IRelationalDatabaseCreator>().EnsureCreatedAsync(Cancel);
    }

    public ValueTask DisposeAsync()
    {
        _encryption?.Dispose();
        _kek?.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }

    private Keyring KeyringCopy() => Keyring.Load(_keyringPath, _kek!);

    private DbContextOptions<CrmContext> Options(IFieldDecryptAuthorizer? authorizer) => Options(_encryption!, authorizer);

    private DbContextOptions<CrmContext> Options(FieldEncryption encryption, IFieldDecryptAuthorizer? authorizer)
    {
        var builder = new DbContextOptionsBuilder<CrmContext>().UseSqlite($"Data Source={Path.Combine(_directory, "crm.db")}");
        builder.UseFieldEncryption(encryption, () => "acme", authorizer);
        return builder.Options;
    }

    private async Task<Contact> StoreAsync(Contact contact)
    {
        await using var context = new CrmContext(_options!);
        context.Contacts.Add(contact);
        await context.SaveChangesAsync(Cancel);
        return contact;
    }

    /// <summary>Allows <paramref name="readableFields"/> on the row named <paramref name="readableRow"/>, and records what it was asked.</summary>
    private sealed class NameRules(string readableRow, string[] readableFields) : IFieldDecryptAuthorizer
    {
        public ConcurrentQueue<(string RowId, string Name, string Field)> Seen { get; } = new();

        public FieldReader Reader { get; } = new("reader-1") { ClientId = "crm-app", SourceIp = "203.0.113.9" };

        public FieldDecryptDecision Authorize(FieldDecryptRequest request)
        {
            var contact = (Contact)request.Entity;
            Seen.Enqueue((request.RowId, contact.Name, request.Field.Column));
            return contact.Name == readableRow && readableFields.Contains(request.Field.Column)
                ? FieldDecryptDecision.Allow($"test grant on {request.Field.Column}")
                : FieldDecryptDecision.Deny($"test: {request.Field.Column} of {contact.Name} is not readable");
        }
    }

    private sealed class FailingSink : ICryptoEventSink
    {
        public ValueTask WriteAsync(CryptoAccessEvent accessEvent, CancellationToken cancellationToken) =>
            ValueTask.FromException(new IOException("the audit log is not writable"));
    }
}
