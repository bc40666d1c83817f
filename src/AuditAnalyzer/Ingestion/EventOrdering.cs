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
    private readonly RecentIds _seen = new();
    private long _newest = long.MinValue;
    private long _lastReleased = long.MinValue;

    /// <summary>Timestamp of the last event released: everything up to it has been handed on.</summary>
    public DateTimeOffset? Watermark => _lastReleased == long.MinValue ? null : new DateTimeOffset(_lastReleased, TimeSpan.Zero);

    public int Pending => _pending.Count;

    /// <summary>Event ids still remembered for dedupe (pending, or released less than a lateness ago).</summary>
    public int RememberedIds => _seen.CountLive(ForgetBefore);

    /// <summary>Ids of events older than this were released more than a lateness ago and are forgotten.</summary>
    private long ForgetBefore => _lastReleased == long.MinValue ? long.MinValue : _lastReleased - _latenessTicks;

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

        if (e.HasSourceId && !_seen.Add(Hash(e.EventId), ticks, ForgetBefore))
        {
            report.Reject(e.SourceFile ?? "(stream)", e.SourceLine, RejectReason.Duplicate, $"event_id '{e.EventId}' was already read");
            return;
        }

        _pending.Insert(e, ticks);
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
            var next = _pending.RemoveFirst();
            _lastReleased = next.UtcTicks;
            ready.Add(next);
        }
    }
}

/// <summary>
/// The 64-bit hashes of recent event ids with their event's timestamp, in an open-addressing table
/// (linear probing, power-of-two size). Nothing is removed one by one: an entry whose timestamp is older
/// than the caller's forget-before time counts as absent (a new event with the same hash takes its slot),
/// and when half the slots are used the live entries are copied into a second, clean table of the same
/// size, which then becomes the table (both are doubled when more than a quarter of the slots is live). So
/// the cost per event is one hash and a probe or two plus an amortised copy of a few slots, nothing is
/// allocated in steady state, memory follows the events in the window, and which ids are remembered is
/// exactly "pending, or released less than a lateness ago".
/// </summary>
internal sealed class RecentIds
{
    private const long Empty = long.MinValue;
    private Slot[] _slots = NewSlots(4096);
    private Slot[] _spare = NewSlots(4096);
    private int _used;

    /// <summary>Adds a hash; false when it is already there and not older than <paramref name="forgetBefore"/>.</summary>
    public bool Add(ulong hash, long ticks, long forgetBefore)
    {
        var slots = _slots;
        var mask = slots.Length - 1;
        var i = (int)hash & mask;
        while (true)
        {
            ref var slot = ref slots[i];
            if (slot.Ticks == Empty)
            {
                slot = new Slot(hash, ticks);
                if (++_used > slots.Length / 2)
                {
                    Rebuild(forgetBefore);
                }

                return true;
            }

            if (slot.Hash == hash)
            {
                if (slot.Ticks >= forgetBefore)
                {
                    return false;
                }

                slot = new Slot(hash, ticks); // the earlier event with this id is forgotten: this one takes its place
                return true;
            }

            i = (i + 1) & mask;
        }
    }

    public int CountLive(long forgetBefore)
    {
        var live = 0;
        foreach (var slot in _slots)
        {
            live += slot.Ticks != Empty && slot.Ticks >= forgetBefore ? 1 : 0;
        }

        return live;
    }

    private void Rebuild(long forgetBefore)
    {
        var old = _slots;
        var target = _spare;
        var mask = target.Length - 1;
        var live = 0;
        foreach (var slot in old)
        {
            if (slot.Ticks != Empty && slot.Ticks >= forgetBefore)
            {
                var i = (int)slot.Hash & mask;
                while (target[i].Ticks != Empty)
                {
                    i = (i + 1) & mask;
                }

                target[i] = slot;
                live++;
            }
        }

        Array.Fill(old, new Slot(0, Empty));
        _slots = target;
        _spare = old;
        _used = live;
        if (live > target.Length / 4)
        {
            // Rebuilds would come too often: double both tables (rare: the window holds more ids than before).
            _spare = NewSlots(target.Length * 2);
            Rebuild(forgetBefore);
            _spare = NewSlots(_slots.Length);
        }
    }

    private static Slot[] NewSlots(int size)
    {
        var slots = new Slot[size];
        Array.Fill(slots, new Slot(0, Empty));
        return slots;
    }

    private readonly record struct Slot(ulong Hash, long Ticks);
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
    private int _head;

    public int Count { get; private set; }

    public long FirstTicks => _ticks[_head];

    public void Insert(AccessEvent e, long ticks)
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
            at--;
        }

        _items[(_head + at) & mask] = e;
        _ticks[(_head + at) & mask] = ticks;
        Count++;
    }

    public AccessEvent RemoveFirst()
    {
        var e = _items[_head];
        _items[_head] = null!;
        _head = (_head + 1) & (_items.Length - 1);
        Count--;
        return e;
    }

    private void Grow()
    {
        var items = new AccessEvent[_items.Length * 2];
        var ticks = new long[_items.Length * 2];
        for (var i = 0; i < Count; i++)
        {
            items[i] = _items[(_head + i) & (_items.Length - 1)];
            ticks[i] = _ticks[(_head + i) & (_items.Length - 1)];
        }

        _items = items;
        _ticks = ticks;
        _head = 0;
    }
}
