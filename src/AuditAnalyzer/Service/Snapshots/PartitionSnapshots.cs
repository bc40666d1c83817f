using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;

namespace CrmSecurity.AuditAnalyzer.Service.Snapshots;

/// <summary>
/// Snapshots of partitions' scorer state in the service's own database, so taking a partition over (a restart, another
/// instance or grain) continues from the snapshot and replays only the events scored after it, instead of the whole
/// history. A snapshot is written every <see cref="LiveOptions.SnapshotEveryEvents"/> scored events or
/// <see cref="LiveOptions.SnapshotInterval"/>, whichever comes first, inside the transaction that saves findings and marks
/// events scored, so it always matches the <c>scored</c> flags. One that cannot be used (another format, damaged, another
/// policy) is ignored and the partition is replayed as before; one made under an older directory is used, and the people
/// whose data changed since are moved as a live directory change moves them (<see cref="Scoring.Scorer.Rebind"/>).
/// </summary>
internal sealed partial class PartitionSnapshots(LiveOptions options, TimeProvider time, ILogger logger)
{
    /// <summary>Most unscored events below the covered sequence number a snapshot records; with more, no snapshot is written this time.</summary>
    internal const int MaxGaps = 10_000;

    private long _restored;
    private long _replayed;
    private long _written;
    private long _ignored;

    /// <summary>Rebuilds that started from a snapshot (since start).</summary>
    public long Restored => Interlocked.Read(ref _restored);

    /// <summary>Events replayed by rebuilds, with or without a snapshot (since start).</summary>
    public long Replayed => Interlocked.Read(ref _replayed);

    /// <summary>Snapshots written (since start).</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <summary>Snapshots found but not used (since start).</summary>
    public long Ignored => Interlocked.Read(ref _ignored);

    internal void CountReplayed(int partition, long events, bool fromSnapshot, TimeSpan elapsed)
    {
        Interlocked.Add(ref _replayed, events);
        LogRebuilt(logger, partition, fromSnapshot ? "its snapshot" : "the start", events, (long)elapsed.TotalMilliseconds);
    }

    /// <summary>
    /// Reads the partition's snapshot into <paramref name="state"/>'s new scorer; null (and a log line saying why) when
    /// there is none or it cannot be used, and then the state must be made anew.
    /// </summary>
    public async Task<SnapshotCoverage?> TryRestoreAsync(LiveDbContext db, int partition, PartitionState state, CancellationToken cancellationToken)
    {
        if (options.SnapshotEveryEvents == 0)
        {
            return null;
        }

        var row = await db.Set<PartitionSnapshotRow>().AsNoTracking().FirstOrDefaultAsync(s => s.Partition == partition, cancellationToken);
        if (row is null)
        {
            return null;
        }

        var coverage = ScorerSnapshot.TryRead(row.Data, state.Scorer, out var reason);
        if (coverage is null)
        {
            Interlocked.Increment(ref _ignored);
            LogIgnored(logger, partition, reason ?? "unknown");
            return null;
        }

        Interlocked.Increment(ref _restored);
        state.SnapshotEvents = state.Scorer.EventsScored;
        state.SnapshotTime = time.GetUtcNow();
        return coverage;
    }

    /// <summary>
    /// Inside the transaction that marked <paramref name="scoredNow"/> more events scored: writes the partition's snapshot
    /// when it is due. The covered sequence number and the gaps below it are read in the same transaction, after the update.
    /// </summary>
    public async Task SaveIfDueAsync(LiveDbContext db, EventLog.IEventLog log, int partition, PartitionState state, IReadOnlyList<StoredEventRow> scoredNow, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var since = state.Scorer.EventsScored - state.SnapshotEvents;
        if (options.SnapshotEveryEvents == 0 || scoredNow.Count == 0
            || (since < options.SnapshotEveryEvents && now - state.SnapshotTime < options.SnapshotInterval))
        {
            return;
        }

        // Events appended with a lower position than ones already acknowledged (batches of concurrent senders commit out of
        // order) are not covered yet: the snapshot lists them, and a rebuild replays them if they are scored by then.
        var (covered, gaps) = await log.CoverageAsync(db, partition, scoredNow, MaxGaps, cancellationToken);
        if (gaps.Count > MaxGaps)
        {
            return;
        }

        var data = ScorerSnapshot.Write(state.Scorer, new SnapshotCoverage(covered, gaps));
        await db.Set<PartitionSnapshotRow>().Where(s => s.Partition == partition).ExecuteDeleteAsync(cancellationToken);
        var row = new PartitionSnapshotRow
        {
            Partition = partition,
            CoveredSeq = covered,
            Events = state.Scorer.EventsScored,
            CreatedTicks = now.UtcTicks,
            Format = ScorerSnapshot.FormatVersion,
            Data = data,
        };
        db.Add(row);
        await db.SaveChangesAsync(cancellationToken);
        db.Entry(row).State = EntityState.Detached;
        state.SnapshotEvents = state.Scorer.EventsScored;
        state.SnapshotTime = now;
        Interlocked.Increment(ref _written);
        LogWritten(logger, partition, covered, data.Length);
    }

    [LoggerMessage(EventId = 6110, Level = LogLevel.Information, Message = "Rebuilt partition {Partition} from {From}: replayed {Events} events in {Milliseconds} ms")]
    private static partial void LogRebuilt(ILogger logger, int partition, string from, long events, long milliseconds);

    [LoggerMessage(EventId = 6111, Level = LogLevel.Information, Message = "The snapshot of partition {Partition} is not used ({Reason}); the partition is replayed from the start")]
    private static partial void LogIgnored(ILogger logger, int partition, string reason);

    [LoggerMessage(EventId = 6112, Level = LogLevel.Debug, Message = "Snapshot of partition {Partition} written, covering events up to {Seq} ({Bytes} bytes)")]
    private static partial void LogWritten(ILogger logger, int partition, long seq, int bytes);
}
