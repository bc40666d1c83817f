using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Crypto.Subjects;

/// <summary>The Crypto module's own tables: data-subject keys and re-encryption checkpoints.</summary>
/// <param name="options">Provider options (the host's database).</param>
public sealed class CryptoDbContext(DbContextOptions<CryptoDbContext> options) : DbContext(options)
{
    /// <summary>Schema version of these tables.</summary>
    public const int SchemaVersion = 1;

    /// <summary>One key per data subject per tenant (wrapped), or its tombstone once shredded.</summary>
    public DbSet<SubjectKeyRecord> SubjectKeys => Set<SubjectKeyRecord>();

    /// <summary>Progress of re-encryption jobs.</summary>
    public DbSet<ReencryptionCheckpoint> ReencryptionCheckpoints => Set<ReencryptionCheckpoint>();

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
        modelBuilder.Entity<ReencryptionCheckpoint>(entity =>
        {
            entity.ToTable("crypto_reencryption_checkpoints");
            entity.HasKey(c => c.Job);
            entity.Property(c => c.Job).HasColumnName("job").HasMaxLength(255);
            entity.Property(c => c.LastKey).HasColumnName("last_key");
            entity.Property(c => c.RowsDone).HasColumnName("rows_done");
            entity.Property(c => c.Completed).HasColumnName("completed");
            entity.Property(c => c.UpdatedAt).HasColumnName("updated_at");
        });
    }
}

/// <summary>A data subject's key, wrapped under the keyring's <c>fields</c> keyset (AES-256-GCM bound to tenant and subject id).</summary>
public sealed class SubjectKeyRecord
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

/// <summary>How far a re-encryption job got: the last primary key it finished, as text.</summary>
public sealed class ReencryptionCheckpoint
{
    /// <summary>Job name (table and columns).</summary>
    public required string Job { get; set; }

    /// <summary>The last primary key rewritten, or null before the first batch.</summary>
    public string? LastKey { get; set; }

    /// <summary>Rows examined so far.</summary>
    public long RowsDone { get; set; }

    /// <summary>Whether the job reached the end of the table.</summary>
    public bool Completed { get; set; }

    /// <summary>When the checkpoint was written.</summary>
    public DateTimeOffset UpdatedAt { get; set; }
}
