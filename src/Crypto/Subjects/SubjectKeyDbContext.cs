using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace CrmSecurity.Crypto.Subjects;

/// <summary>
/// The subject-key store: one wrapped key (or tombstone) per data subject and tenant. It is key material, so it
/// lives with the keys, not with the data: by default a SQLite file beside the keyring
/// (<c>Crypto:SubjectKeys:*</c>), never the data database. A backup of the data then holds only ciphertext,
/// and a shred (which deletes the key here) reaches every copy of the data.
/// </summary>
/// <remarks>
/// On SQLite every connection runs with <c>PRAGMA secure_delete = ON</c>, so the bytes of a shredded key are
/// overwritten with zeros in the file instead of being left in a free page or cell; after a shred the store
/// also truncates the write-ahead log (<c>PRAGMA wal_checkpoint(TRUNCATE)</c>), which would otherwise keep
/// older copies of the page holding the key.
/// </remarks>
/// <param name="options">Provider options (the subject-key database).</param>
internal sealed class SubjectKeyDbContext(DbContextOptions<SubjectKeyDbContext> options) : DbContext(options)
{
    /// <summary>Schema version of the subject-key store.</summary>
    public const int SchemaVersion = 1;

    /// <summary>One key per data subject per tenant (wrapped), or its tombstone once shredded.</summary>
    public DbSet<SubjectKeyRecord> SubjectKeys => Set<SubjectKeyRecord>();

    /// <inheritdoc />
    protected override void OnConfiguring(DbContextOptionsBuilder optionsBuilder)
    {
        ArgumentNullException.ThrowIfNull(optionsBuilder);

        // Here rather than left to whoever builds the options: every context on this store gets it, so a caller
        // cannot forget it.
        optionsBuilder.AddInterceptors(SqliteSecureDelete.Instance);
    }

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);
        modelBuilder.Entity<SubjectKeyRecord>(entity =>
        {
            entity.ToTable("crypto_subject_keys");
            entity.HasKey(k => new { k.Tenant, k.SubjectId });
            entity.Property(k => k.Tenant).HasColumnName("tenant").HasMaxLength(255);
            entity.Property(k => k.SubjectId).HasColumnName("subject_id").HasMaxLength(255);
            entity.Property(k => k.KeysetId).HasColumnName("keyset_id");
            entity.Property(k => k.WrappedKey).HasColumnName("wrapped_key");
            entity.Property(k => k.CreatedAt).HasColumnName("created_at");
            entity.Property(k => k.ShreddedAt).HasColumnName("shredded_at");
        });
    }
}

/// <summary>
/// A data subject's key, wrapped under the keyring's <c>subjects</c> keyset (AES-256-GCM bound to tenant and
/// subject id), or the tombstone left when it was shredded.
/// </summary>
internal sealed class SubjectKeyRecord
{
    /// <summary>Tenant.</summary>
    public required string Tenant { get; set; }

    /// <summary>The data subject (for example the contact id).</summary>
    public required string SubjectId { get; set; }

    /// <summary>The subject keyset's id, written into every ciphertext made with it.</summary>
    public long KeysetId { get; set; }

    /// <summary>The wrapped key; null once shredded (the tombstone keeps "shredded" apart from "never existed").</summary>
    public byte[]? WrappedKey { get; set; }

    /// <summary>When the key was made.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When the key was shredded.</summary>
    public DateTimeOffset? ShreddedAt { get; set; }
}

/// <summary>Turns on SQLite's secure delete for every connection of the subject-key store (other providers are left alone).</summary>
internal sealed class SqliteSecureDelete : DbConnectionInterceptor
{
    public static readonly SqliteSecureDelete Instance = new();

    private SqliteSecureDelete()
    {
    }

    public static bool IsSqlite(DbConnection connection) => connection.GetType().FullName == "Microsoft.Data.Sqlite.SqliteConnection";

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData)
    {
        if (IsSqlite(connection))
        {
            using var command = Pragma(connection);
            command.ExecuteNonQuery();
        }
    }

    public override async Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        if (IsSqlite(connection))
        {
            await using var command = Pragma(connection);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    // https://www.sqlite.org/pragma.html#pragma_secure_delete: deleted content is overwritten with zeros. It is a
    // per-connection setting (pooled connections keep it), so it is set on every open.
    private static DbCommand Pragma(DbConnection connection)
    {
        var command = connection.CreateCommand();
        command.CommandText = "PRAGMA secure_delete = ON;";
        return command;
    }
}
