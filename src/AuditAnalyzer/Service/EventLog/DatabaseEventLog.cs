using System.Data.Common;
using CrmSecurity.AuditAnalyzer.Service.IngestionWrites;
using CrmSecurity.Shared;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service.EventLog;

/// <summary>
/// The ingestion log as the <c>analyzer_live_events</c> table of the service's own database (the default, and the only
/// implementation built): a position is the row's sequence number, "acknowledged" is its <c>scored</c> column, and the
/// reads are index probes and range scans on (partition, scored, seq). One per service scope, over that scope's context.
/// </summary>
internal sealed class DatabaseEventLog(LiveDbContext db, IOptions<LiveOptions> options) : IEventLog
{
    // Probes per statement in PendingPartitionsAsync.
    private const int ProbesPerQuery = 32;

    /// <inheritdoc/>
    /// <remarks>
    /// SQLite and PostgreSQL: one insert that skips stored keys (<see cref="BatchInserts"/>), committed together with the
    /// batches other requests queued meanwhile (<see cref="GroupCommits"/>). Other providers (SQL Server): one prepared
    /// INSERT per new row in one transaction, falling back to EF Core when a key was stored concurrently.
    /// </remarks>
    public async Task<int> AppendAsync(List<StoredEventRow> rows, Action? handedOver, CancellationToken cancellationToken)
    {
        if (!BatchInserts.Supports(db))
        {
            handedOver?.Invoke();
            return rows.Count == 0 ? 0 : await AppendPreparedAsync(rows, cancellationToken);
        }

        if (rows.Count == 0)
        {
            if (!BatchInserts.WritesInProcess(db))
            {
                handedOver?.Invoke();
            }

            return 0;
        }

        // Once queued the batch is written even if its sender stops waiting. On a database server the caller's slot can go
        // to the next batch now (the write's work is mostly the server's); on SQLite the write runs on this host's cores.
        var pending = await GroupCommits.EnqueueAsync(db, rows, options.Value.MaxUncommittedBatches, cancellationToken);
        if (!BatchInserts.WritesInProcess(db))
        {
            handedOver?.Invoke();
        }

        return await pending.CommitAsync(db);
    }

    /// <inheritdoc/>
    public Task<List<StoredEventRow>> ReadPendingAsync(int partition, int max, CancellationToken cancellationToken) =>
        db.Events.AsNoTracking()
            .Where(e => e.Partition == partition && !e.Scored)
            .OrderBy(e => e.Seq)
            .Take(max)
            .ToListAsync(cancellationToken);

    /// <inheritdoc/>
    public Task<List<StoredEventRow>> ReplayAsync(int partition, long after, int max, CancellationToken cancellationToken) =>
        Acknowledged(partition)
            .Where(e => e.Seq > after)
            .OrderBy(e => e.Seq)
            .Take(max)
            .ToListAsync(cancellationToken);

    /// <inheritdoc/>
    public Task<List<StoredEventRow>> ReplayAsync(int partition, IReadOnlyCollection<long> positions, CancellationToken cancellationToken)
    {
        var seqs = positions.ToList();
        return Acknowledged(partition).Where(e => seqs.Contains(e.Seq)).OrderBy(e => e.Seq).ToListAsync(cancellationToken);
    }

    /// <inheritdoc/>
    /// <remarks>One UPDATE of exactly the rows read, on <paramref name="transaction"/>'s connection, in its transaction.</remarks>
    public async Task<Func<CancellationToken, Task>?> AcknowledgeAsync(
        LiveDbContext transaction, int partition, IReadOnlyList<StoredEventRow> read, CancellationToken cancellationToken)
    {
        var seqs = read.Select(e => e.Seq).ToList();
        if (seqs.Count > 0)
        {
            await transaction.Events.Where(e => seqs.Contains(e.Seq)).ExecuteUpdateAsync(s => s.SetProperty(e => e.Scored, true), cancellationToken);
        }

        return null; // committed with the transaction: nothing left to do after it
    }

    /// <inheritdoc/>
    /// <remarks>
    /// "Has partition p an unscored event" is asked of each partition, one index probe on (partition, scored, seq) each,
    /// the probes joined with UNION ALL into one statement per <see cref="ProbesPerQuery"/> partitions: a
    /// <c>SELECT DISTINCT partition WHERE NOT scored</c> read the whole index on every poll (no skip scan), a cost that
    /// grew with the stored events, scored or not.
    /// </remarks>
    public async Task<List<int>> PendingPartitionsAsync(int partitions, CancellationToken cancellationToken) =>
        await FirstPendingAsync(partitions, e => e.Partition, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>Each partition's first unscored event (in seq order, the order it is scored in), probed as above.</remarks>
    public async Task<long?> OldestPendingAsync(int partitions, CancellationToken cancellationToken) =>
        (await FirstPendingAsync(partitions, e => e.ReceivedTicks, cancellationToken)).Select(t => (long?)t).Min();

    /// <summary>
    /// <paramref name="value"/> of each partition's first unscored event (partitions without one give nothing): one index
    /// probe per partition on (partition, scored, seq), the probes joined with UNION ALL, <see cref="ProbesPerQuery"/> to a statement.
    /// </summary>
    private async Task<List<T>> FirstPendingAsync<T>(int partitions, System.Linq.Expressions.Expression<Func<StoredEventRow, T>> value, CancellationToken cancellationToken)
    {
        var found = new List<T>();
        for (var first = 0; first < partitions; first += ProbesPerQuery)
        {
            IQueryable<T>? probes = null;
            for (var p = first; p < Math.Min(partitions, first + ProbesPerQuery); p++)
            {
                var partition = p; // one parameter per probe
                var probe = db.Events.AsNoTracking().Where(e => e.Partition == partition && !e.Scored).OrderBy(e => e.Seq).Select(value).Take(1);
                probes = probes is null ? probe : probes.Concat(probe);
            }

            found.AddRange(await probes!.ToListAsync(cancellationToken));
        }

        return found;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Read in the scoring transaction after the <c>scored</c> update, so it matches the flags it covers. Events stored with
    /// a lower sequence number than ones already scored (batches of concurrent senders commit out of order) are the gaps.
    /// </remarks>
    public async Task<(long Covered, List<long> Gaps)> CoverageAsync(LiveDbContext db, int partition, IReadOnlyList<StoredEventRow> acknowledging, int maxGaps, CancellationToken cancellationToken)
    {
        var events = db.Events.AsNoTracking().Where(e => e.Partition == partition);
        var covered = await events.Where(e => e.Scored).MaxAsync(e => (long?)e.Seq, cancellationToken) ?? 0;
        var gaps = await events.Where(e => !e.Scored && e.Seq < covered).OrderBy(e => e.Seq).Select(e => e.Seq).Take(maxGaps + 1).ToListAsync(cancellationToken);
        return (covered, gaps);
    }

    /// <inheritdoc/>
    /// <remarks>The first row by sequence number (the primary key's order): one indexed row.</remarks>
    public async Task<int?> FirstArrivalDayAsync(CancellationToken cancellationToken)
    {
        var ticks = await db.Events.AsNoTracking().OrderBy(e => e.Seq).Select(e => (long?)e.TimestampTicks).FirstOrDefaultAsync(cancellationToken);
        return ticks is { } t ? (int)(t / TimeSpan.TicksPerDay) : null;
    }

    private IQueryable<StoredEventRow> Acknowledged(int partition) => db.Events.AsNoTracking().Where(e => e.Partition == partition && e.Scored);

    /// <summary>
    /// SQL Server: the table is append-only, so one prepared INSERT per row in one transaction replaces EF Core's change
    /// tracking (ten times faster for a large batch such as the demo history); a key taken meanwhile by a concurrent writer
    /// falls back to <see cref="AppendTrackedAsync"/>, which re-checks.
    /// </summary>
    private async Task<int> AppendPreparedAsync(List<StoredEventRow> rows, CancellationToken cancellationToken)
    {
        var keys = rows.Select(r => r.EventKey).ToList();
        var known = (await db.Events.AsNoTracking().Where(e => keys.Contains(e.EventKey)).Select(e => e.EventKey).ToListAsync(cancellationToken))
            .ToHashSet(StringComparer.Ordinal);
        var fresh = rows.Where(r => !known.Contains(r.EventKey)).ToList();
        if (fresh.Count == 0)
        {
            return 0;
        }

        var insert = PreparedInsert<StoredEventRow>.For(db);
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var transaction = await db.Database.GetDbConnection().BeginTransactionAsync(cancellationToken);
            try
            {
                await insert.ExecuteAsync(transaction, fresh, cancellationToken);
                await transaction.CommitAsync(cancellationToken);
            }
            catch (DbException)
            {
                await transaction.RollbackAsync(cancellationToken);
                return await AppendTrackedAsync(fresh, cancellationToken);
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }

        return fresh.Count;
    }

    /// <summary>The EF Core path: reads which keys are stored, adds the others, retries a key stored meanwhile.</summary>
    private async Task<int> AppendTrackedAsync(List<StoredEventRow> rows, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var keys = rows.Select(r => r.EventKey).ToList();
                var known = (await db.Events.AsNoTracking().Where(e => keys.Contains(e.EventKey)).Select(e => e.EventKey).ToListAsync(cancellationToken))
                    .ToHashSet(StringComparer.Ordinal);
                var fresh = rows.Where(r => !known.Contains(r.EventKey)).ToList();
                if (fresh.Count > 0)
                {
                    db.Events.AddRange(fresh);
                    await db.SaveChangesAsync(cancellationToken);
                }

                return fresh.Count;
            }
            catch (DbUpdateException) when (attempt < 3)
            {
                // The same event arrived concurrently on another request or instance (unique event_key): look again.
                db.ChangeTracker.Clear();
                foreach (var row in rows)
                {
                    row.Seq = 0;
                }
            }
            finally
            {
                db.ChangeTracker.Clear();
            }
        }
    }
}
