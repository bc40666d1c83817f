using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Crypto.Subjects;

/// <summary>
/// The Crypto module's tables in the data database: re-encryption checkpoints and shred tombstones. No key
/// material lives here (subject keys are in <see cref="SubjectKeyDbContext"/>, beside the keyring).
/// </summary>
/// <param name="options">Provider options (the host's database).</param>
internal sealed class CryptoDbContext(DbContextOptions<CryptoDbContext> options) : DbContext(options)
{
    /// <summary>Schema version of these tables (2: subject keys moved out to the subject-key store, tombstones added).</summary>
    public const int SchemaVersion = 2;

    /// <summary>
    /// Every shred, recorded in the data database too (it holds no key material), so that restoring an older
    /// backup of the subject-key store can re-apply shreds made after that backup.
    /// </summary>
    internal DbSet<SubjectTombstone> SubjectTombstones => Set<SubjectTombstone>();

    /// <summary>Progress of re-encryption jobs.</summary>
    internal DbSet<ReencryptionCheckpoint> ReencryptionCheckpoints => Set<ReencryptionCheckpoint>();

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);
        modelBuilder.Entity<SubjectTombstone>(entity =>
        {
            entity.ToTable("crypto_subject_tombstones");
            entity.HasKey(t => new { t.Tenant, t.SubjectId });
            entity.Property(t => t.Tenant).HasColumnName("tenant").HasMaxLength(255);
            entity.Property(t => t.SubjectId).HasColumnName("subject_id").HasMaxLength(255);
            entity.Property(t => t.ShreddedAt).HasColumnName("shredded_at");
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

/// <summary>That a data subject was shredded, and when: no key material.</summary>
internal sealed class SubjectTombstone
{
    /// <summary>Tenant.</summary>
    public required string Tenant { get; set; }

    /// <summary>The data subject.</summary>
    public required string SubjectId { get; set; }

    /// <summary>When it was shredded.</summary>
    public DateTimeOffset ShreddedAt { get; set; }
}

/// <summary>How far a re-encryption job got: the last primary key it finished, as text.</summary>
internal sealed class ReencryptionCheckpoint
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
