using System.IO.Hashing;
using System.Runtime.InteropServices;
using CrmSecurity.AuditAnalyzer.Events;

namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>
/// Puts events in timestamp order within a bounded lateness and drops repeated event ids, in memory
/// proportional to the events inside the lateness window (never to the whole input).
/// <para>
/// Order: an event is held until the newest timestamp seen is more than <c>lateness</c> past it, then
/// released in order. An event older than the last one released can no longer be put in order; it is
/// rejected as late (counted, reported, not scored).
/// </para>
/// <para>
/// Duplicates: a 64-bit hash of every source event id is kept until its event is a full lateness older
/// than the last released event. So a repeated <c>event_id</c> is always dropped when the two copies'
/// timestamps are less than the lateness apart (a replayed copy has the same timestamp), and a copy
/// older than that is rejected as late anyway. No duplicate is scored twice unless two different
/// events share an id more than the lateness apart, or two ids collide in 64 bits (about 1 in 10^8 for
/// a million ids in the window).
/// </para>
/// </summary>
internal sealed class EventOrdering(TimeSpan lateness, IngestionReport report, DateTimeOffset? resumeAfter = null)
{
    private readonly long _latenessTicks = lateness.Ticks;
    private readonly long _resumeTicks = resumeAfter?.UtcTicks ?? long.MinValue;
    private readonly OrderedBuffer _pending = new();
    private readonly HashSet<ulong> _seen = [];
    private readonly Queue<(long Ticks, ulong Hash)> _released = new();
    private long _newest = long.MinValue;
    private long _lastReleased = long.MinValue;

    /// <summary>Timestamp of the last event released: everything up to it has been handed on.</summary>
    public DateTimeOffset? Watermark => _lastReleased == long.MinValue ? null : new DateTimeOffset(_lastReleased, TimeSpan.Zero);

    public int Pending => _pending.Count;

    public int RememberedIds => _seen.Count;

    public void Add(AccessEvent e, List<AccessEvent> ready)
    {
        var ticks = e.UtcTicks;
        if (ticks <= _resumeTicks)
        {
            report.Reject(e.SourceFile ?? "(stream)", e.SourceLine, RejectReason.AlreadyAnalysed,
                $"event at {e.Timestamp:O} is not after the end of the previous run ({new DateTimeOffset(_resumeTicks, TimeSpan.Zero):O}) kept with the baselines");
            return;
        }

        if (ticks < _lastReleased)
        {
            report.Reject(e.SourceFile ?? "(stream)", e.SourceLine, RejectReason.Late,
                $"event at {e.Timestamp:O} arrived after events up to {new DateTimeOffset(_lastReleased, TimeSpan.Zero):O} were scored (lateness {lateness})");
            return;
        }

        var hash = e.HasSourceId ? Hash(e.EventId) : 0;
        if (e.HasSourceId && !_seen.Add(hash))
        {
            report.Reject(e.SourceFile ?? "(stream)", e.SourceLine, RejectReason.Duplicate, $"event_id '{e.EventId}' was already read");
            return;
        }

        _pending.Insert(e, ticks, hash);
        if (ticks > _newest)
        {
            _newest = ticks;
        }

        Release(_newest - _latenessTicks, ready);
    }

    public void Complete(List<AccessEvent> ready) => Release(long.MaxValue, ready);

    internal static ulong Hash(string id) => XxHash3.HashToUInt64(MemoryMarshal.AsBytes(id.AsSpan()));

    private void Release(long upTo, List<AccessEvent> ready)
    {
        while (_pending.Count > 0 && _pending.FirstTicks <= upTo)
        {
            var next = _pending.RemoveFirst(out var nextHash);
            _lastReleased = next.UtcTicks;
            if (next.HasSourceId)
            {
                _released.Enqueue((_lastReleased, nextHash));
            }

            ready.Add(next);
        }

        var forgetBefore = _lastReleased - _latenessTicks;
        while (_released.TryPeek(out var old) && old.Ticks < forgetBefore)
        {
            _released.Dequeue();
            _seen.Remove(old.Hash);
        }
    }
}

/// <summary>
/// Events kept sorted by timestamp in a ring buffer. Input is nearly sorted, so an event is almost always
/// appended at the end (O(1)); a late one is moved into place from the end, over the few events it is
/// older than. Events with equal timestamps keep their arrival order.
/// </summary>
internal sealed class OrderedBuffer
{
    private AccessEvent[] _items = new AccessEvent[1024];
    private long[] _ticks = new long[1024];
    private ulong[] _hashes = new ulong[1024];
    private int _head;

    public int Count { get; private set; }

    public long FirstTicks => _ticks[_head];

    public void Insert(AccessEvent e, long ticks, ulong hash)
    {
        if (Count == _items.Length)
        {
            Grow();
        }

        var mask = _items.Length - 1;
        var at = Count;
        while (at > 0 && _ticks[(_head + at - 1) & mask] > ticks)
        {
            _items[(_head + at) & mask] = _items[(_head + at - 1) & mask];
            _ticks[(_head + at) & mask] = _ticks[(_head + at - 1) & mask];
            _hashes[(_head + at) & mask] = _hashes[(_head + at - 1) & mask];
            at--;
        }

        _items[(_head + at) & mask] = e;
        _ticks[(_head + at) & mask] = ticks;
        _hashes[(_head + at) & mask] = hash;
        Count++;
    }

    public AccessEvent RemoveFirst(out ulong hash)
    {
        var e = _items[_head];
        hash = _hashes[_head];
        _items[_head] = null!;
        _head = (_head + 1) & (_items.Length - 1);
        Count--;
        return e;
    }

    private void Grow()
    {
        var items = new AccessEvent[_items.Length * 2];
        var ticks = new long[_items.Length * 2];
        var hashes = new ulong[_items.Length * 2];
        for (var i = 0; i < Count; i++)
        {
            items[i] = _items[(_head + i) & (_items.Length - 1)];
            ticks[i] = _ticks[(_head + i) & (_items.Length - 1)];
            hashes[i] = _hashes[(_head + i) & (_items.Length - 1)];
        }

        _items = items;
        _ticks = ticks;
        _hashes = hashes;
        _head = 0;
    }
}
