namespace CrmSecurity.AuditAnalyzer.Service.EventLog;

/// <summary>
/// The ingestion log: where validated access events are appended and where the scorers read them back, partition by
/// partition, in order. It is everything of live analysis that a Kafka-backed deployment replaces (issue 17, "Beyond one
/// database"; docs/live-analysis-scale.md, "The seam"): the ingest endpoint, Identity's in-process writer and
/// <see cref="PartitionScoring"/> use only this, never the events table. Today's implementation is the events table
/// (<see cref="DatabaseEventLog"/>); a topic keyed by user would implement it with a producer and one consumer per partition.
/// </summary>
/// <remarks>
/// A <em>position</em> is where an event stands in its partition, ascending in append order: the table's sequence number
/// (<see cref="StoredEventRow.Seq"/>) here, the record's offset on Kafka. Events are read back as the rows they were
/// appended as (<see cref="StoredEventRow.Seq"/> set to their position). The log is resolved from the caller's service
/// scope, so the database implementation reads through the same context (and connection) as the rest of a scoring step.
/// Delivery is at least once: an event read but not acknowledged is read again, by whichever instance scores its
/// partition next. That is safe because every write a scoring step makes is idempotent on the events behind it:
/// finding ids are deterministic (user and first evidence time) and findings are upserted by id, so a finding saved again replaces itself.
/// </remarks>
internal interface IEventLog
{
    /// <summary>
    /// Appends a batch of validated events (<see cref="EventBatches.Parse"/>'s rows); returns how many were new. Durable when
    /// this returns (a 2xx may say so), idempotent on <see cref="StoredEventRow.EventKey"/> (client and <c>event_id</c>): an
    /// event appended before, by this or any instance, is counted as a duplicate and appended nowhere. Kafka: an idempotent
    /// producer with <c>acks=all</c>, returning once the broker has acknowledged every record of the batch.
    /// </summary>
    /// <param name="rows">The batch; the per-line results of its parse (rejections, duplicates within it) stay with the caller.</param>
    /// <param name="handedOver">
    /// Called at most once, when the batch is queued for writing and its write no longer runs on this host's cores (a
    /// database server, a broker): the caller may then free its share of the host (the ingest endpoint's slot) while it
    /// waits for durability. Not called when the write itself runs in this process (SQLite).
    /// </param>
    /// <param name="cancellationToken">Cancels the wait for room in the write queue; once queued, a batch is written whether or not its sender still waits.</param>
    Task<int> AppendAsync(List<StoredEventRow> rows, Action? handedOver, CancellationToken cancellationToken);

    /// <summary>
    /// The partition's first <paramref name="max"/> events not acknowledged yet, in position order. Kafka: the consumer's
    /// poll on the assigned partition, from the committed offset.
    /// </summary>
    Task<List<StoredEventRow>> ReadPendingAsync(int partition, int max, CancellationToken cancellationToken);

    /// <summary>
    /// The partition's acknowledged events after <paramref name="after"/>, in position order, at most <paramref name="max"/>:
    /// a rebuild replays them to restore the scorer its last owner had. Kafka: seek to <paramref name="after"/> + 1 and poll
    /// up to the committed offset.
    /// </summary>
    Task<List<StoredEventRow>> ReplayAsync(int partition, long after, int max, CancellationToken cancellationToken);

    /// <summary>
    /// Those of <paramref name="positions"/> that are acknowledged events of the partition, in position order: the events a
    /// snapshot listed as not yet scored below its covered position (concurrent appends commit out of position order) and
    /// that were scored since. Kafka: a seek to each (positions there are assigned in commit order, so a snapshot lists none).
    /// </summary>
    Task<List<StoredEventRow>> ReplayAsync(int partition, IReadOnlyCollection<long> positions, CancellationToken cancellationToken);

    /// <summary>
    /// Acknowledges <paramref name="read"/> (events of the partition returned by <see cref="ReadPendingAsync"/>, now scored)
    /// as part of the fenced scoring transaction open on <paramref name="db"/>; returns what is left to do once that
    /// transaction has committed, or null.
    /// </summary>
    /// <remarks>
    /// The database log marks exactly the events read inside the transaction (not everything up to the last one: an event
    /// appended concurrently with a lower position may not have been visible to the read), so findings, progress and
    /// snapshot commit or roll back together, and an instance that lost the partition's lease acknowledges nothing.
    /// A Kafka log cannot join a database transaction: it returns a callback that commits the partition's offset (the last
    /// read position + 1, <c>commitOffsets</c>) after the commit. A crash between the two re-delivers those events, and the
    /// partition's next owner scores them again: at least once, not exactly once. That is safe because the scorer's
    /// findings have deterministic ids (user and first evidence time) and are upserted by id, so a re-scored event
    /// rewrites the same finding instead of adding one; the scorer state it feeds is rebuilt from the snapshot and the
    /// replay of acknowledged events only, so it is never counted twice either.
    /// </remarks>
    Task<Func<CancellationToken, Task>?> AcknowledgeAsync(LiveDbContext db, int partition, IReadOnlyList<StoredEventRow> read, CancellationToken cancellationToken);

    /// <summary>
    /// The partitions among 0 .. <paramref name="partitions"/> - 1 that have events not acknowledged yet. Kafka: the
    /// consumer group's lag per partition (committed offset below the end offset).
    /// </summary>
    Task<List<int>> PendingPartitionsAsync(int partitions, CancellationToken cancellationToken);

    /// <summary>
    /// Where a snapshot written now stands in the partition, asked inside the scoring transaction on <paramref name="db"/>
    /// right after <see cref="AcknowledgeAsync"/> of <paramref name="acknowledging"/>: the highest position acknowledged
    /// (those events included), and the positions below it not acknowledged yet, at most <paramref name="maxGaps"/> + 1 of
    /// them (more tells the caller not to write this snapshot). A rebuild from the snapshot replays what comes after and
    /// those gaps. Kafka: the offset about to be committed; positions there are given in commit order, so no gaps.
    /// </summary>
    Task<(long Covered, List<long> Gaps)> CoverageAsync(LiveDbContext db, int partition, IReadOnlyList<StoredEventRow> acknowledging, int maxGaps, CancellationToken cancellationToken);

    /// <summary>
    /// When the oldest event not acknowledged yet (over partitions 0 .. <paramref name="partitions"/> - 1) was appended, as
    /// UTC ticks, or null when none waits: how far scoring is behind (<see cref="ScoringLag"/>: the gauge, the readiness
    /// check and backpressure). Kafka: the record at each partition's committed offset, its append timestamp.
    /// </summary>
    Task<long?> OldestPendingAsync(int partitions, CancellationToken cancellationToken);

    /// <summary>
    /// The UTC day number of the event time of the first event appended (by position), or null before any: where the
    /// organisation's learning period starts when nothing has written it down yet (<see cref="OrganisationHistory"/>).
    /// Kafka: the earliest retained record of each partition (<c>offsetsForTimes</c> / the beginning offsets).
    /// </summary>
    Task<int?> FirstArrivalDayAsync(CancellationToken cancellationToken);
}
