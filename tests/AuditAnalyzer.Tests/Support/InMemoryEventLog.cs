using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Service.EventLog;

namespace CrmSecurity.AuditAnalyzer.Tests.Support;

/// <summary>
/// A second <see cref="IEventLog"/>, in memory and shaped like a Kafka topic: positions are assigned at append and never
/// reused, appends are idempotent on the event key (the idempotent producer plus the grain's window of recent ids), and an
/// acknowledgement is not part of the scoring transaction: it is a callback run after that transaction has committed, as a
/// consumer's <c>commitOffsets</c> would be. It lives outside any host, so a host restarted on it reads the same log.
/// </summary>
internal sealed class InMemoryEventLog : IEventLog
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, StoredEventRow> _byKey = new(StringComparer.Ordinal);
    private readonly SortedDictionary<int, List<StoredEventRow>> _partitions = [];
    private readonly HashSet<long> _acknowledged = [];
    private long _next;

    /// <summary>Every event appended, in position order.</summary>
    public IReadOnlyList<StoredEventRow> Events
    {
        get
        {
            lock (_gate)
            {
                return [.. _partitions.Values.SelectMany(p => p).OrderBy(e => e.Seq).Select(Copy)];
            }
        }
    }

    /// <summary>How many events are acknowledged.</summary>
    public int Acknowledged
    {
        get
        {
            lock (_gate)
            {
                return _acknowledged.Count;
            }
        }
    }

    /// <summary>How many acknowledgements ran, each after its scoring transaction had committed.</summary>
    public int AfterCommitCallbacks { get; private set; }

    public Task<int> AppendAsync(List<StoredEventRow> rows, Action? handedOver, CancellationToken cancellationToken)
    {
        // The write runs in this process, like SQLite's: the caller keeps its slot (handedOver is not called).
        var appended = 0;
        lock (_gate)
        {
            foreach (var row in rows)
            {
                if (_byKey.ContainsKey(row.EventKey))
                {
                    continue;
                }

                var stored = Copy(row);
                stored.Seq = ++_next;
                stored.Scored = false;
                _byKey.Add(stored.EventKey, stored);
                if (!_partitions.TryGetValue(stored.Partition, out var partition))
                {
                    _partitions[stored.Partition] = partition = [];
                }

                partition.Add(stored);
                appended++;
            }
        }

        return Task.FromResult(appended);
    }

    public Task<List<StoredEventRow>> ReadPendingAsync(int partition, int max, CancellationToken cancellationToken) =>
        Task.FromResult(Read(partition, e => !_acknowledged.Contains(e.Seq), max));

    public Task<List<StoredEventRow>> ReplayAsync(int partition, long after, int max, CancellationToken cancellationToken) =>
        Task.FromResult(Read(partition, e => e.Seq > after && _acknowledged.Contains(e.Seq), max));

    public Task<List<StoredEventRow>> ReplayAsync(int partition, IReadOnlyCollection<long> positions, CancellationToken cancellationToken)
    {
        var wanted = positions.ToHashSet();
        return Task.FromResult(Read(partition, e => wanted.Contains(e.Seq) && _acknowledged.Contains(e.Seq), int.MaxValue));
    }

    public Task<Func<CancellationToken, Task>?> AcknowledgeAsync(LiveDbContext db, int partition, IReadOnlyList<StoredEventRow> read, CancellationToken cancellationToken)
    {
        if (read.Count == 0)
        {
            return Task.FromResult<Func<CancellationToken, Task>?>(null);
        }

        // Nothing happens inside the database transaction: the offsets are committed once it has committed.
        var positions = read.Select(e => e.Seq).ToList();
        return Task.FromResult<Func<CancellationToken, Task>?>(_ =>
        {
            lock (_gate)
            {
                _acknowledged.UnionWith(positions);
                AfterCommitCallbacks++;
            }

            return Task.CompletedTask;
        });
    }

    /// <summary>The page being acknowledged counts as acknowledged: its offsets are committed right after this transaction.</summary>
    public Task<(long Covered, List<long> Gaps)> CoverageAsync(LiveDbContext db, int partition, IReadOnlyList<StoredEventRow> acknowledging, int maxGaps, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var done = _acknowledged.Union(acknowledging.Select(e => e.Seq)).ToHashSet();
            var events = _partitions.GetValueOrDefault(partition) ?? [];
            var covered = events.Where(e => done.Contains(e.Seq)).Select(e => e.Seq).DefaultIfEmpty(0).Max();
            var gaps = events.Where(e => e.Seq < covered && !done.Contains(e.Seq)).Select(e => e.Seq).Order().Take(maxGaps + 1).ToList();
            return Task.FromResult((covered, gaps));
        }
    }

    public Task<List<int>> PendingPartitionsAsync(int partitions, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_partitions.Where(p => p.Key < partitions && p.Value.Any(e => !_acknowledged.Contains(e.Seq))).Select(p => p.Key).ToList());
        }
    }

    public Task<long?> OldestPendingAsync(int partitions, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var waiting = _partitions.Where(p => p.Key < partitions).SelectMany(p => p.Value).Where(e => !_acknowledged.Contains(e.Seq)).ToList();
            return Task.FromResult(waiting.Count == 0 ? null : (long?)waiting.Min(e => e.ReceivedTicks));
        }
    }

    public Task<int?> FirstArrivalDayAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var first = _partitions.Values.SelectMany(p => p).MinBy(e => e.Seq);
            return Task.FromResult(first is null ? null : (int?)(first.TimestampTicks / TimeSpan.TicksPerDay));
        }
    }

    private List<StoredEventRow> Read(int partition, Func<StoredEventRow, bool> which, int max)
    {
        lock (_gate)
        {
            return _partitions.TryGetValue(partition, out var events)
                ? [.. events.Where(which).Take(max).Select(Copy)] // a partition's list is in position order
                : [];
        }
    }

    private StoredEventRow Copy(StoredEventRow row) => new()
    {
        Seq = row.Seq,
        EventKey = row.EventKey,
        ClientId = row.ClientId,
        UserId = row.UserId,
        Partition = row.Partition,
        TimestampTicks = row.TimestampTicks,
        Line = row.Line,
        ReceivedTicks = row.ReceivedTicks,
        Scored = _acknowledged.Contains(row.Seq),
    };
}
