using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Service.Snapshots;

/// <summary>
/// The latest snapshot of one partition's scorer state (<see cref="ScorerSnapshot"/>), written in the transaction that
/// marks the events it covers scored. Behavioural baselines of named people: see SECURITY.md.
/// </summary>
internal sealed class PartitionSnapshotRow
{
    public int Partition { get; set; }

    /// <summary>The highest sequence number of the partition's scored events when the snapshot was written.</summary>
    public long CoveredSeq { get; set; }

    /// <summary>Events the scorer had seen (replayed and scored) when the snapshot was written; for operators.</summary>
    public long Events { get; set; }

    public long CreatedTicks { get; set; }

    public int Format { get; set; }

    public required byte[] Data { get; set; }

    public static void Configure(ModelBuilder modelBuilder) => modelBuilder.Entity<PartitionSnapshotRow>(e =>
    {
        e.ToTable("analyzer_live_snapshots");
        e.HasKey(x => x.Partition);
        e.Property(x => x.Partition).HasColumnName("partition").ValueGeneratedNever();
        e.Property(x => x.CoveredSeq).HasColumnName("covered_seq");
        e.Property(x => x.Events).HasColumnName("events");
        e.Property(x => x.CreatedTicks).HasColumnName("created_ticks");
        e.Property(x => x.Format).HasColumnName("format");
        e.Property(x => x.Data).HasColumnName("data");
    });
}
