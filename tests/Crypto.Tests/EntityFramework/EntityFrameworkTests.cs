using System.Data.Common;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.EntityFramework;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Subjects;
using CrmSecurity.Crypto.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

namespace CrmSecurity.Crypto.Tests.EntityFramework;

/// <summary>Field encryption through EF Core, on SQLite files and on the real PostgreSQL started by scripts/test.sh.</summary>
public sealed class EntityFrameworkTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-ef-").FullName;
    private readonly RecordingEventSink _events = new();
    private PostgresDatabase? _postgres;
    private FieldEncryption? _encryption;

    public enum Store
    {
        Sqlite,
        PostgreSql,
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task Encrypted_properties_round_trip_and_are_stored_only_as_ciphertext(Store store)
    {
        var options = await CreateDatabaseAsync(store);
        var contact = new Contact { Name = "Alice", Email = "Alice@Example.com", Phone = "020 7946 0018", NationalId = "AB 12 34 56 C", Notes = "prefers calls" };
        await using (var context = Crm(options))
        {
            context.Contacts.Add(contact);
            await context.SaveChangesAsync(TestContext.Current.CancellationToken);
        }

        await using var reading = Crm(options);
        var read = await reading.Contacts.SingleAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("Alice@Example.com", "020 7946 0018", "AB 12 34 56 C", "prefers calls"), (read.Email, read.Phone, read.NationalId, read.Notes));

        var raw = await RawAsync(reading, "SELECT \"Email_encrypted\" FROM contacts");
        Assert.Equal(1, raw[0]); // format version byte
        Assert.DoesNotContain("Example", System.Text.Encoding.UTF8.GetString(raw), StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task Equality_queries_find_rows_through_blind_indexes_and_deterministic_ciphertext(Store store)
    {
        var options = await CreateDatabaseAsync(store);
        await using (var context = Crm(options))
        {
            context.Contacts.AddRange(
                new Contact { Name = "Alice", Email = "alice@example.com", Phone = "+44 20 7946 0018", NationalId = "AB123456C" },
                new Contact { Name = "Bob", Email = "bob@example.com", Phone = "+1 212 555 0100", NationalId = "ZZ999999Z" });
            await context.SaveChangesAsync(TestContext.Current.CancellationToken);
        }

        await using var query = Crm(options);
        var byEmail = await query.Contacts.WhereEncryptedEqualsAsync(c => c.Email, "  ALICE@example.COM", "email", TestContext.Current.CancellationToken);
        var byPhone = await query.Contacts.WhereEncryptedEqualsAsync(c => c.Phone, "020 7946 0018", "e164", TestContext.Current.CancellationToken);
        var byLast4 = await query.Contacts.WhereEncryptedMatches(c => c.Phone, "555-0100", "last4").ToListAsync(TestContext.Current.CancellationToken);
        var byNationalId = await query.Contacts.WhereEncryptedMatches(c => c.NationalId, "ZZ999999Z").ToListAsync(TestContext.Current.CancellationToken);

        Assert.Equal("Alice", Assert.Single(byEmail).Name);
        Assert.Equal("Alice", Assert.Single(byPhone).Name);
        Assert.Contains(byLast4, c => c.Name == "Bob");
        Assert.Equal("Bob", Assert.Single(byNationalId).Name);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task A_ciphertext_copied_to_another_row_fails_to_decrypt(Store store)
    {
        var options = await CreateDatabaseAsync(store);
        var alice = new Contact { Name = "Alice", Notes = "alice's secret" };
        var bob = new Contact { Name = "Bob", Notes = "bob's note" };
        await using (var context = Crm(options))
        {
            context.Contacts.AddRange(alice, bob);
            await context.SaveChangesAsync(TestContext.Current.CancellationToken);
            await context.Database.ExecuteSqlRawAsync(
                "UPDATE contacts SET \"Notes_encrypted\" = (SELECT \"Notes_encrypted\" FROM contacts WHERE \"Name\" = 'Alice') WHERE \"Name\" = 'Bob'",
                TestContext.Current.CancellationToken);
        }

        await using var reading = Crm(options);
        var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => reading.Contacts.Where(c => c.Name == "Bob").ToListAsync(TestContext.Current.CancellationToken));

        Assert.Equal(DecryptFailureReason.RowMismatch, error.Reason);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task A_ciphertext_copied_to_another_column_fails_to_decrypt(Store store)
    {
        var options = await CreateDatabaseAsync(store);
        await using (var context = Crm(options))
        {
            context.Contacts.Add(new Contact { Name = "Alice", Email = "alice@example.com", Notes = "note" });
            await context.SaveChangesAsync(TestContext.Current.CancellationToken);
            await context.Database.ExecuteSqlRawAsync("UPDATE contacts SET \"Notes_encrypted\" = \"Email_encrypted\"", TestContext.Current.CancellationToken);
        }

        await using var reading = Crm(options);
        var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => reading.Contacts.ToListAsync(TestContext.Current.CancellationToken));

        Assert.Equal(DecryptFailureReason.ColumnMismatch, error.Reason);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task Only_changed_values_are_reencrypted_on_save(Store store)
    {
        var options = await CreateDatabaseAsync(store);
        await using (var context = Crm(options))
        {
            context.Contacts.Add(new Contact { Name = "Alice", Email = "alice@example.com", Notes = "old" });
            await context.SaveChangesAsync(TestContext.Current.CancellationToken);
        }

        byte[] emailBefore;
        await using (var context = Crm(options))
        {
            emailBefore = await RawAsync(context, "SELECT \"Email_encrypted\" FROM contacts");
            var contact = await context.Contacts.SingleAsync(TestContext.Current.CancellationToken);
            contact.Notes = "new";
            await context.SaveChangesAsync(TestContext.Current.CancellationToken);
        }

        await using var reading = Crm(options);
        Assert.Equal("new", (await reading.Contacts.SingleAsync(TestContext.Current.CancellationToken)).Notes);
        Assert.Equal(emailBefore, await RawAsync(reading, "SELECT \"Email_encrypted\" FROM contacts"));
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task Shredding_a_subject_makes_its_fields_unreadable_in_every_copy_and_purges_its_blind_indexes(Store store)
    {
        var options = await CreateDatabaseAsync(store);
        var shredded = new Person { Email = "gone@example.com", Notes = "to be forgotten" };
        var kept = new Person { Email = "kept@example.com", Notes = "stays" };
        byte[] backupOfNotes;
        await using (var context = Crm(options))
        {
            context.People.AddRange(shredded, kept);
            await context.SaveChangesAsync(TestContext.Current.CancellationToken);
            backupOfNotes = await context.People.Where(p => p.Id == shredded.Id).Select(p => EF.Property<byte[]>(p, "Notes_encrypted")).SingleAsync(TestContext.Current.CancellationToken);
            var purged = await context.ShredDataSubjectAsync(shredded.Id.ToString(), "dpo@acme", TestContext.Current.CancellationToken);
            Assert.Equal(1, purged);
        }

        await using var reading = Crm(options);
        var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => reading.People.Where(p => p.Id == shredded.Id).ToListAsync(TestContext.Current.CancellationToken));
        Assert.Equal(DecryptFailureReason.SubjectShredded, error.Reason);
        Assert.Equal("stays", (await reading.People.SingleAsync(p => p.Id == kept.Id, TestContext.Current.CancellationToken)).Notes);
        Assert.Empty(await reading.People.WhereEncryptedMatches(p => p.Email, "gone@example.com", "email").Select(p => p.Id).ToListAsync(TestContext.Current.CancellationToken));

        // A backup of the row taken before the shred is as unreadable as the live row.
        await reading.Database.ExecuteSqlRawAsync("UPDATE people SET \"Notes_encrypted\" = {0} WHERE \"Id\" = {1}", [backupOfNotes, IdParameter(store, shredded.Id)], TestContext.Current.CancellationToken);
        Assert.Equal(DecryptFailureReason.SubjectShredded, (await Assert.ThrowsAsync<FieldDecryptionException>(() => reading.People.Where(p => p.Id == shredded.Id).ToListAsync(TestContext.Current.CancellationToken))).Reason);

        var shred = Assert.Single(_events.Events, e => e.Action == "admin_change");
        // Reading the shredded row failed, and the failed decrypt is in the audit trail too (never a value).
        Assert.Contains(_events.Events, e => e is { Action: "decrypt", Outcome: "error" } && e.RecordId == shredded.Id.ToString() && e.Details!.Contains("SubjectShredded", StringComparison.Ordinal));
        Assert.Equal(("admin_change", "acme", shredded.Id.ToString(), "dpo@acme", "crypto_shred"), (shred.Action, shred.Tenant, shred.RecordId, shred.UserId, shred.Privilege));
        Assert.DoesNotContain("forgotten", JsonLinesEventSink.ToJsonLine(shred), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task A_data_backup_taken_before_a_shred_and_restored_after_it_cannot_read_the_shredded_subject_but_reads_the_others(Store store)
    {
        var options = await CreateDatabaseAsync(store);
        var shredded = new Person { Email = "gone@example.com", Notes = "to be forgotten" };
        var kept = new Person { Email = "kept@example.com", Notes = "stays" };
        await using (var context = Crm(options))
        {
            context.People.AddRange(shredded, kept);
            await context.SaveChangesAsync(TestContext.Current.CancellationToken);
            await BackUpDataAsync(store, context);
            await context.ShredDataSubjectAsync(shredded.Id.ToString(), "dpo@acme", TestContext.Current.CancellationToken);
        }

        await RestoreDataAsync(store, options);

        // Only the data came back: the key store (beside the keyring) still has the tombstone and no key.
        await using var reading = Crm(options);
        var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => reading.People.Where(p => p.Id == shredded.Id).ToListAsync(TestContext.Current.CancellationToken));
        Assert.Equal(DecryptFailureReason.SubjectShredded, error.Reason);
        var keptRead = await reading.People.SingleAsync(p => p.Id == kept.Id, TestContext.Current.CancellationToken);
        Assert.Equal(("kept@example.com", "stays"), (keptRead.Email, keptRead.Notes));

        // The restored rows brought the shredded subject's blind index back; re-applying the shreds clears it again.
        Assert.Equal([shredded.Id], await reading.People.WhereEncryptedMatches(p => p.Email, "gone@example.com", "email").Select(p => p.Id).ToListAsync(TestContext.Current.CancellationToken));
        var (reapplied, purged) = await reading.ReapplyShredsAsync("dpo@acme", TestContext.Current.CancellationToken);
        Assert.Equal((0, 1, 1), (reapplied.Reapplied, reapplied.TombstonesRecordedInData, purged));
        Assert.Empty(await reading.People.WhereEncryptedMatches(p => p.Email, "gone@example.com", "email").Select(p => p.Id).ToListAsync(TestContext.Current.CancellationToken));
        Assert.Equal([kept.Id], await reading.People.WhereEncryptedMatches(p => p.Email, "kept@example.com", "email").Select(p => p.Id).ToListAsync(TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData(Store.Sqlite)]
    [InlineData(Store.PostgreSql)]
    public async Task A_value_copied_between_data_subjects_fails_as_the_wrong_key(Store store)
    {
        var options = await CreateDatabaseAsync(store);
        var first = new Person { Notes = "first" };
        var second = new Person { Notes = "second" };
        await using (var context = Crm(options))
        {
            context.People.AddRange(first, second);
            await context.SaveChangesAsync(TestContext.Current.CancellationToken);
            await context.Database.ExecuteSqlRawAsync(
                "UPDATE people SET \"Notes_encrypted\" = (SELECT \"Notes_encrypted\" FROM people WHERE \"Id\" = {0}) WHERE \"Id\" = {1}",
                [IdParameter(store, first.Id), IdParameter(store, second.Id)],
                TestContext.Current.CancellationToken);
        }

        await using var reading = Crm(options);
        var error = await Assert.ThrowsAsync<FieldDecryptionException>(() => reading.People.Where(p => p.Id == second.Id).ToListAsync(TestContext.Current.CancellationToken));

        Assert.Equal(DecryptFailureReason.WrongKeyset, error.Reason);
    }

    [Fact]
    public async Task A_database_generated_key_is_refused_because_the_row_id_must_be_bound_before_insert()
    {
        var options = await CreateDatabaseAsync(Store.Sqlite);
        var leadBuilder = new DbContextOptionsBuilder<IdentityKeyContext>().UseSqlite($"Data Source={Path.Combine(_directory, "leads.db")}");
        leadBuilder.UseFieldEncryption(_encryption!, () => "acme");
        var leadOptions = leadBuilder.Options;
        await using var context = new IdentityKeyContext(leadOptions);
        await context.Database.EnsureCreatedAsync(TestContext.Current.CancellationToken);
        context.Leads.Add(new Lead { Email = "x@example.com" });

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => context.SaveChangesAsync(TestContext.Current.CancellationToken));

        Assert.Contains("client-generated key", error.Message, StringComparison.Ordinal);
        Assert.NotNull(options);
    }

    [Fact]
    public void A_blind_index_configuration_that_leaks_too_much_is_refused_with_the_reason()
    {
        var builder = new ModelBuilder();

        var error = Assert.Throws<InvalidOperationException>(() => builder.Entity<Contact>().Encrypted(c => c.Email).WithBlindIndex("email", Normaliser.Email, bits: 32, expectedRows: 10_000));

        Assert.Contains("C < 2", error.Message, StringComparison.Ordinal);
        Assert.Contains("at most 12 bits", error.Message, StringComparison.Ordinal);
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        _encryption?.Dispose();
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    // EF Core keeps Guids as upper-case TEXT in SQLite and as uuid in PostgreSQL.
    private static object IdParameter(Store store, Guid id) => store == Store.Sqlite ? id.ToString().ToUpperInvariant() : id;

    private static CrmContext Crm(DbContextOptions<CrmContext> options) => new(options);

    private async Task<DbContextOptions<CrmContext>> CreateDatabaseAsync(Store store)
    {
        Action<DbContextOptionsBuilder> provider;
        if (store == Store.Sqlite)
        {
            var path = Path.Combine(_directory, "crm.db");
            provider = o => o.UseSqlite($"Data Source={path}");
        }
        else
        {
            _postgres = await PostgresDatabase.CreateAsync(cancellationToken: TestContext.Current.CancellationToken);
            var connection = _postgres.ConnectionString;
            provider = o => o.UseNpgsql(connection);
        }

        var cryptoOptions = new DbContextOptionsBuilder<CryptoDbContext>();
        provider(cryptoOptions);
        await using (var crypto = new CryptoDbContext(cryptoOptions.Options))
        {
            await crypto.Database.EnsureCreatedAsync(TestContext.Current.CancellationToken);
        }

        // The subject-key store is a SQLite file of its own, as beside the keyring, whatever the data database is.
        var keyStoreOptions = new DbContextOptionsBuilder<SubjectKeyDbContext>().UseSqlite($"Data Source={Path.Combine(_directory, "subject-keys.db")}").Options;
        await using (var keys = new SubjectKeyDbContext(keyStoreOptions))
        {
            await keys.Database.EnsureCreatedAsync(TestContext.Current.CancellationToken);
        }

        var keyring = Keyring.CreateNew();
        var subjects = new SubjectKeyStore(() => new SubjectKeyDbContext(keyStoreOptions), keyring.Get(Keyring.SubjectsKeyset), _events, () => new CryptoDbContext(cryptoOptions.Options));
        _encryption = new FieldEncryption(keyring, subjects, _events);
        var crmOptions = new DbContextOptionsBuilder<CrmContext>();
        provider(crmOptions);
        // These tests exercise encryption itself, so their reader may read everything; every decrypt is still audited.
        crmOptions.UseFieldEncryption(_encryption, () => "acme", FieldDecryptAuthorizer.AllowAll(new FieldReader("ef-tests"), "the library's own tests read every row"));
        await using (var crm = new CrmContext(crmOptions.Options))
        {
            await crm.GetService<IRelationalDatabaseCreator>().CreateTablesAsync(TestContext.Current.CancellationToken);
        }

        return crmOptions.Options;
    }

    // A backup of the data database: SQLite's online backup of the whole file; on PostgreSQL a copy of the rows of the
    // tables involved (no pg_dump here), taken the same way.
    private async Task BackUpDataAsync(Store store, CrmContext context)
    {
        if (store == Store.Sqlite)
        {
            await using var live = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_directory, "crm.db")}");
            await using var copy = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_directory, "crm-backup.db")}");
            await live.OpenAsync(TestContext.Current.CancellationToken);
            live.BackupDatabase(copy);
            return;
        }

        await context.Database.ExecuteSqlRawAsync(
            "CREATE TABLE people_backup AS SELECT * FROM people; CREATE TABLE tombstones_backup AS SELECT * FROM crypto_subject_tombstones",
            TestContext.Current.CancellationToken);
    }

    private async Task RestoreDataAsync(Store store, DbContextOptions<CrmContext> options)
    {
        if (store == Store.Sqlite)
        {
            await using var copy = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_directory, "crm-backup.db")}");
            await using var live = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_directory, "crm.db")}");
            await copy.OpenAsync(TestContext.Current.CancellationToken);
            copy.BackupDatabase(live);
            return;
        }

        await using var context = Crm(options);
        await context.Database.ExecuteSqlRawAsync(
            "DELETE FROM people; INSERT INTO people SELECT * FROM people_backup; DELETE FROM crypto_subject_tombstones; INSERT INTO crypto_subject_tombstones SELECT * FROM tombstones_backup",
            TestContext.Current.CancellationToken);
    }

    private static async Task<byte[]> RawAsync(DbContext context, string sql)
    {
        var connection = context.Database.GetDbConnection();
        if (connection.State != System.Data.ConnectionState.Open)
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
        }

        await using DbCommand command = connection.CreateCommand();
        command.CommandText = sql;
        return (byte[])(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }
}
