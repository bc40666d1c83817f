using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>How far one destination (the syslog forwarder, a webhook) has got in the findings feed.</summary>
internal sealed class ExportCursorRow
{
    /// <summary><c>syslog</c> or <c>webhook:NAME</c>.</summary>
    public required string Destination { get; set; }

    /// <summary>The <c>updated_ticks</c> of the last finding change handled (delivered, filtered out or failed for good).</summary>
    public long UpdatedTicks { get; set; }

    /// <summary>The id of that finding: the feed is ordered by (updated_ticks, id).</summary>
    public required string FindingId { get; set; }

    public long SavedTicks { get; set; }
}

/// <summary>
/// What a destination last received for a finding (a fingerprint of its content), so a re-save with nothing changed
/// (the scorer rebuilds its state after a restart or a take-over and saves open findings again) is not sent again.
/// </summary>
internal sealed class ExportSentRow
{
    public required string Destination { get; set; }

    public required string FindingId { get; set; }

    public required string Fingerprint { get; set; }
}

/// <summary>Which instance forwards findings, until when (a lease; taken over once expired).</summary>
internal sealed class ExportLeaseRow
{
    public required string Name { get; set; }

    public required string Owner { get; set; }

    public long ExpiresTicks { get; set; }
}

/// <summary>A finding change a destination refused for good (a 4xx answer, or retries used up); kept for an operator.</summary>
internal sealed class ExportFailureRow
{
    public long Id { get; set; }

    public required string Destination { get; set; }

    public required string FindingId { get; set; }

    public long FindingUpdatedTicks { get; set; }

    /// <summary>The HTTP status of the last answer, if there was one.</summary>
    public int? Status { get; set; }

    public required string Reason { get; set; }

    public long FailedTicks { get; set; }
}

/// <summary>
/// The export's own tables. Findings themselves are read from the live tables (<c>analyzer_live_findings</c>)
/// through <see cref="Service.LiveDbContext"/>; nothing here duplicates them.
/// </summary>
public sealed class ExportDbContext(DbContextOptions<ExportDbContext> options) : DbContext(options)
{
    /// <summary>Schema version of these tables, checked by the host at start.</summary>
    public const int SchemaVersion = 1;

    internal DbSet<ExportCursorRow> Cursors => Set<ExportCursorRow>();

    internal DbSet<ExportLeaseRow> Leases => Set<ExportLeaseRow>();

    internal DbSet<ExportSentRow> Sent => Set<ExportSentRow>();

    internal DbSet<ExportFailureRow> Failures => Set<ExportFailureRow>();

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<ExportCursorRow>(e =>
        {
            e.ToTable("analyzer_export_cursors");
            e.HasKey(x => x.Destination);
            e.Property(x => x.Destination).HasColumnName("destination").HasMaxLength(200);
            e.Property(x => x.UpdatedTicks).HasColumnName("updated_ticks");
            e.Property(x => x.FindingId).HasColumnName("finding_id").HasMaxLength(40);
            e.Property(x => x.SavedTicks).HasColumnName("saved_ticks");
        });
        modelBuilder.Entity<ExportSentRow>(e =>
        {
            e.ToTable("analyzer_export_sent");
            e.HasKey(x => new { x.Destination, x.FindingId });
            e.Property(x => x.Destination).HasColumnName("destination").HasMaxLength(200);
            e.Property(x => x.FindingId).HasColumnName("finding_id").HasMaxLength(40);
            e.Property(x => x.Fingerprint).HasColumnName("fingerprint").HasMaxLength(64);
        });
        modelBuilder.Entity<ExportLeaseRow>(e =>
        {
            e.ToTable("analyzer_export_leases");
            e.HasKey(x => x.Name);
            e.Property(x => x.Name).HasColumnName("name").HasMaxLength(100);
            e.Property(x => x.Owner).HasColumnName("owner").HasMaxLength(200);
            e.Property(x => x.ExpiresTicks).HasColumnName("expires_ticks");
        });
        modelBuilder.Entity<ExportFailureRow>(e =>
        {
            e.ToTable("analyzer_export_failures");
            e.HasKey(x => x.Id);
            e.Property(x => x.Id).HasColumnName("id").ValueGeneratedOnAdd();
            e.Property(x => x.Destination).HasColumnName("destination").HasMaxLength(200);
            e.Property(x => x.FindingId).HasColumnName("finding_id").HasMaxLength(40);
            e.Property(x => x.FindingUpdatedTicks).HasColumnName("finding_updated_ticks");
            e.Property(x => x.Status).HasColumnName("status");
            e.Property(x => x.Reason).HasColumnName("reason").HasMaxLength(1000);
            e.Property(x => x.FailedTicks).HasColumnName("failed_ticks");
            e.HasIndex(x => new { x.Destination, x.FailedTicks });
        });
    }
}
