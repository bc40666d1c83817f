using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Crypto.Subjects;

/// <summary>
/// The Crypto module's tables in the data database: re-encryption checkpoints, shred tombstones and the registry of
/// blind-index definitions. No key material lives here (subject keys are in <see cref="SubjectKeyDbContext"/>, beside the keyring).
/// </summary>
/// <param name="options">Provider options (the host's database).</param>
internal sealed class CryptoDbContext(DbContextOptions<CryptoDbContext> options) : DbContext(options)
{
    /// <summary>
    /// Schema version of these tables (2: subject keys moved out to the subject-key store, tombstones added; 3: the
    /// blind-index registry, two new tables, added in place by the host's additive upgrade).
    /// </summary>
    public const int SchemaVersion = 3;

    /// <summary>
    /// Every shred, recorded in the data database too (it holds no key material), so that restoring an older
    /// backup of the subject-key store can re-apply shreds made after that backup.
    /// </summary>
    internal DbSet<SubjectTombstone> SubjectTombstones => Set<SubjectTombstone>();

    /// <summary>Progress of re-encryption jobs.</summary>
    internal DbSet<ReencryptionCheckpoint> ReencryptionCheckpoints => Set<ReencryptionCheckpoint>();

    /// <summary>Columns of the blind-index registry: the rows each is expected to hold (what the planner sizes for).</summary>
    internal DbSet<Service.BlindIndexColumnRecord> BlindIndexColumns => Set<Service.BlindIndexColumnRecord>();

    /// <summary>Blind-index definitions of the registry, managed by security admins.</summary>
    internal DbSet<Service.BlindIndexDefinitionRecord> BlindIndexDefinitions => Set<Service.BlindIndexDefinitionRecord>();

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
        modelBuilder.Entity<Service.BlindIndexColumnRecord>(entity =>
        {
            entity.ToTable("crypto_blind_index_columns");
            entity.HasKey(c => new { c.Table, c.Column });
            entity.Property(c => c.Table).HasColumnName("table_name").HasMaxLength(255);
            entity.Property(c => c.Column).HasColumnName("column_name").HasMaxLength(255);
            entity.Property(c => c.ExpectedRows).HasColumnName("expected_rows");
            entity.Property(c => c.UpdatedAt).HasColumnName("updated_at");
            entity.Property(c => c.UpdatedBy).HasColumnName("updated_by").HasMaxLength(255);
        });
        modelBuilder.Entity<Service.BlindIndexDefinitionRecord>(entity =>
        {
            entity.ToTable("crypto_blind_index_definitions");
            entity.HasKey(d => new { d.Table, d.Column, d.Name });
            entity.Property(d => d.Table).HasColumnName("table_name").HasMaxLength(255);
            entity.Property(d => d.Column).HasColumnName("column_name").HasMaxLength(255);
            entity.Property(d => d.Name).HasColumnName("name").HasMaxLength(255);
            entity.Property(d => d.Normaliser).HasColumnName("normaliser").HasMaxLength(32);
            entity.Property(d => d.Transform).HasColumnName("transform").HasMaxLength(32);
            entity.Property(d => d.Bits).HasColumnName("bits");
            entity.Property(d => d.CreatedAt).HasColumnName("created_at");
            entity.Property(d => d.CreatedBy).HasColumnName("created_by").HasMaxLength(255);
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
