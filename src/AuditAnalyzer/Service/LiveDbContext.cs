using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>An access event received over HTTP, stored as its validated JSON line until (and after) it is scored.</summary>
internal sealed class StoredEventRow
{
    /// <summary>Arrival order; scoring reads a partition's unscored events in this order.</summary>
    public long Seq { get; set; }

    /// <summary>Idempotency key: the sending client and the event's <c>event_id</c> (or a hash of the line).</summary>
    public required string EventKey { get; set; }

    public required string ClientId { get; set; }

    public required string UserId { get; set; }

    public int Partition { get; set; }

    public long TimestampTicks { get; set; }

    public required string Line { get; set; }

    /// <summary>Set in the same transaction that stores the findings the event contributed to.</summary>
    public bool Scored { get; set; }

    public long ReceivedTicks { get; set; }
}

/// <summary>A finding as the background scorer last saw it; an open finding is replaced as it grows (same id).</summary>
internal sealed class StoredFindingRow
{
    public required string Id { get; set; }

    public required string UserId { get; set; }

    public string? UserName { get; set; }

    public required string Detector { get; set; }

    public double Score { get; set; }

    public required string Severity { get; set; }

    public long WindowStartTicks { get; set; }

    public long WindowEndTicks { get; set; }

    public long DetectedTicks { get; set; }

    /// <summary>The finding in the JSON Lines shape of the <c>analyze</c> verb (reasons, event ids, ...).</summary>
    public required string Json { get; set; }

    public long UpdatedTicks { get; set; }

    /// <summary>The user's peer group (department) when known; what a <c>group</c> suppression matches.</summary>
    public string? PeerGroup { get; set; }

    /// <summary>What the review queue shows instead of the user id (see <c>Pseudonyms</c>).</summary>
    public string Pseudonym { get; set; } = "";

    /// <summary>The CRM entities the evidence touched, as <c>,contact,account,</c>: what an <c>entity</c> suppression matches.</summary>
    public string Entities { get; set; } = ",";

    /// <summary>
    /// A copy of the evidence timeline as it was when the finding was saved (JSON, <c>Findings/EvidenceCopy</c>): the finding
    /// page shows it after retention has deleted the events. Null for findings saved by builds before schema 4.
    /// </summary>
    public string? Evidence { get; set; }
}

/// <summary>Who scores a partition of users, until when (a lease; taken over once expired).</summary>
internal sealed class PartitionLeaseRow
{
    public int Partition { get; set; }

    public required string Owner { get; set; }

    public long ExpiresTicks { get; set; }
}

/// <summary>The live service's tables: received events, findings, partition leases, and the review workflow's.</summary>
public sealed class LiveDbContext(DbContextOptions<LiveDbContext> options) : DbContext(options)
{
    /// <summary>Schema version of these tables, checked by the host at start (3: events indexed by user and time; 4: a finding's evidence copy; 5: partition snapshots).</summary>
    public const int SchemaVersion = 5;

    internal DbSet<StoredEventRow> Events => Set<StoredEventRow>();

    internal DbSet<StoredFindingRow> Findings => Set<StoredFindingRow>();

    internal DbSet<PartitionLeaseRow> Leases => Set<PartitionLeaseRow>();

    internal DbSet<Review.FindingReviewRow> Reviews => Set<Review.FindingReviewRow>();

    internal DbSet<Review.ReviewNoteRow> Notes => Set<Review.ReviewNoteRow>();

    internal DbSet<Review.SuppressionRow> Suppressions => Set<Review.SuppressionRow>();

    internal DbSet<Review.FalsePositiveRow> FalsePositives => Set<Review.FalsePositiveRow>();

    internal DbSet<Review.ReviewSettingRow> ReviewSettings => Set<Review.ReviewSettingRow>();

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<StoredEventRow>(e =>
        {
            e.ToTable("analyzer_live_events");
            e.HasKey(x => x.Seq);
            e.Property(x => x.Seq).HasColumnName("seq").ValueGeneratedOnAdd();
            e.Property(x => x.EventKey).HasColumnName("event_key").HasMaxLength(450);
            e.HasIndex(x => x.EventKey).IsUnique();
            e.Property(x => x.ClientId).HasColumnName("client_id").HasMaxLength(200);
            e.Property(x => x.UserId).HasColumnName("user_id").HasMaxLength(200);
            e.Property(x => x.Partition).HasColumnName("partition");
            e.Property(x => x.TimestampTicks).HasColumnName("timestamp_ticks");
            e.Property(x => x.Line).HasColumnName("line");
            e.Property(x => x.Scored).HasColumnName("scored");
            e.Property(x => x.ReceivedTicks).HasColumnName("received_ticks");
            e.HasIndex(x => new { x.Partition, x.Scored, x.Seq });
            // A user's events in a time range: the evidence of a finding and the user and finding pages' pictures (without
            // it every such page read the whole table). Added to older databases by the additive upgrade at start.
            e.HasIndex(x => new { x.UserId, x.TimestampTicks });
        });
        modelBuilder.Entity<StoredFindingRow>(e =>
        {
            e.ToTable("analyzer_live_findings");
            e.HasKey(x => x.Id);
            e.Property(x => x.Id).HasColumnName("id").HasMaxLength(40);
            e.Property(x => x.UserId).HasColumnName("user_id").HasMaxLength(200);
            e.Property(x => x.UserName).HasColumnName("user_name").HasMaxLength(400);
            e.Property(x => x.Detector).HasColumnName("detector").HasMaxLength(100);
            e.Property(x => x.Score).HasColumnName("score");
            e.Property(x => x.Severity).HasColumnName("severity").HasMaxLength(20);
            e.Property(x => x.WindowStartTicks).HasColumnName("window_start_ticks");
            e.Property(x => x.WindowEndTicks).HasColumnName("window_end_ticks");
            e.Property(x => x.DetectedTicks).HasColumnName("detected_ticks");
            e.Property(x => x.Json).HasColumnName("json");
            e.Property(x => x.UpdatedTicks).HasColumnName("updated_ticks");
            e.Property(x => x.PeerGroup).HasColumnName("peer_group").HasMaxLength(200);
            e.Property(x => x.Pseudonym).HasColumnName("pseudonym").HasMaxLength(20);
            e.Property(x => x.Entities).HasColumnName("entities").HasMaxLength(2000);
            // Nullable, so the additive upgrade at start adds it to older databases; their findings keep reading the events.
            e.Property(x => x.Evidence).HasColumnName("evidence");
            e.HasIndex(x => new { x.UserId, x.WindowStartTicks });
            e.HasIndex(x => x.Pseudonym);
            e.HasIndex(x => new { x.UpdatedTicks, x.Id }); // the export feed and forwarders read changes in this order
        });
        modelBuilder.Entity<PartitionLeaseRow>(e =>
        {
            e.ToTable("analyzer_partition_leases");
            e.HasKey(x => x.Partition);
            e.Property(x => x.Partition).HasColumnName("partition").ValueGeneratedNever();
            e.Property(x => x.Owner).HasColumnName("owner").HasMaxLength(200);
            e.Property(x => x.ExpiresTicks).HasColumnName("expires_ticks");
        });
        Review.ReviewTables.Configure(modelBuilder);
        // A new table: the additive upgrade at start creates it in older databases, which then replay once and snapshot.
        Snapshots.PartitionSnapshotRow.Configure(modelBuilder);
    }
}
