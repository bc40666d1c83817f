using System.Collections.Concurrent;
using System.Data.Common;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Service.IngestionWrites;

/// <summary>
/// Batches of concurrent requests (and of the in-process writer) committed together: a batch is queued, and whichever
/// of the waiting requests takes the writer's turn first stores every queued batch in one transaction, one statement per
/// batch in queue order, so each batch's count of new rows is exact (a key that an earlier batch of the same
/// transaction stored counts as a duplicate of the later one). Each request still returns only once its own batch is
/// committed, so a 2xx keeps meaning durable. No thread of its own: the writer is always a request that waits anyway.
/// One queue per database (connection string), so hosts of one process on one database share their commits.
/// </summary>
internal static class GroupCommits
{
    // Most batches and rows in one transaction: large enough to spread a commit over many batches, small enough that a
    // transaction (and a failure that makes every batch in it answer 503) stays short.
    private const int MaxBatchesPerCommit = 16;
    private const int MaxRowsPerCommit = 20_000;

    // SQLite has one writer for the whole file, and the token endpoint and the admin API write to the same file: a
    // 16-batch transaction held that lock for hundreds of milliseconds, and token requests waited behind it (token p99
    // 739 ms under a saturating load run against 376 ms before group commits). Two batches keep a commit short.
    private const int SqliteMaxRowsPerCommit = 1_000;

    private static readonly ConcurrentDictionary<string, Lane> Lanes = new(StringComparer.Ordinal);

    /// <summary>
    /// Queues <paramref name="rows"/> to be committed, waiting (asynchronously) while <paramref name="maxUncommitted"/>
    /// batches of this database are already queued or being written: what waits in memory stays bounded. (A database's
    /// bound is its first caller's; every caller passes <see cref="LiveOptions.MaxUncommittedBatches"/>.)
    /// </summary>
    public static async Task<Pending> EnqueueAsync(LiveDbContext db, List<StoredEventRow> rows, int maxUncommitted, CancellationToken cancellationToken)
    {
        var lane = Lanes.GetOrAdd(db.Database.GetConnectionString() ?? "", static (_, size) => new Lane(size), Math.Max(1, maxUncommitted));
        await lane.Room.WaitAsync(cancellationToken);
        var pending = new Pending(lane, rows);
        lane.Queue.Enqueue(pending);
        return pending;
    }

    /// <summary>Queues and commits; returns how many of <paramref name="rows"/> were new.</summary>
    public static async Task<int> StoreAsync(LiveDbContext db, List<StoredEventRow> rows, int maxUncommitted, CancellationToken cancellationToken) =>
        await (await EnqueueAsync(db, rows, maxUncommitted, cancellationToken)).CommitAsync(db);

    /// <summary>The batches of one database waiting to be committed, and the turn to write them.</summary>
    internal sealed class Lane(int room)
    {
        public SemaphoreSlim Turn { get; } = new(1, 1);

        public SemaphoreSlim Room { get; } = new(room, room);

        public ConcurrentQueue<Pending> Queue { get; } = new();
    }

    /// <summary>A queued batch; <see cref="CommitAsync"/> returns once it is committed (or throws why it was not).</summary>
    internal sealed class Pending(Lane lane, List<StoredEventRow> rows)
    {
        private readonly TaskCompletionSource<int> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<StoredEventRow> Rows => rows;

        /// <summary>
        /// Waits until this batch is committed, writing it (and every batch queued before and after it, up to a bound)
        /// when this caller takes the writer's turn first. Not cancellable once queued: another request's batch may be
        /// in the same transaction, and a queued batch is written whether or not its sender still waits.
        /// </summary>
        public async Task<int> CommitAsync(LiveDbContext db)
        {
            while (!_done.Task.IsCompleted)
            {
                await lane.Turn.WaitAsync(CancellationToken.None);
                try
                {
                    if (_done.Task.IsCompleted)
                    {
                        break;
                    }

                    var group = new List<Pending>();
                    var total = 0;
                    var maxRows = BatchInserts.WritesInProcess(db) ? SqliteMaxRowsPerCommit : MaxRowsPerCommit;
                    while (group.Count < MaxBatchesPerCommit && lane.Queue.TryPeek(out var next)
                        && (group.Count == 0 || total + next.Rows.Count <= maxRows) && lane.Queue.TryDequeue(out next))
                    {
                        group.Add(next);
                        total += next.Rows.Count;
                    }

                    await WriteAsync(db, group);
                }
                finally
                {
                    lane.Turn.Release();
                }
            }

            return await _done.Task;
        }

        private static async Task WriteAsync(LiveDbContext db, List<Pending> group)
        {
            try
            {
                var stored = await BatchInserts.InsertAsync(db, group.Select(p => (IReadOnlyList<StoredEventRow>)p.Rows).ToList(), CancellationToken.None);
                for (var index = 0; index < group.Count; index++)
                {
                    group[index].Complete(stored[index], null);
                }
            }
            catch (Exception e) when (group.Count > 1 && e is DbException or InvalidOperationException)
            {
                // One batch must not fail the others: each alone, so only a batch that cannot be stored answers an error.
                foreach (var pending in group)
                {
                    await WriteAsync(db, [pending]);
                }
            }
            catch (Exception e)
            {
                foreach (var pending in group)
                {
                    pending.Complete(0, e);
                }
            }
        }

        private void Complete(int stored, Exception? failure)
        {
            lane.Room.Release();
            if (failure is null)
            {
                _done.TrySetResult(stored);
            }
            else
            {
                _done.TrySetException(failure);
            }
        }
    }
}
