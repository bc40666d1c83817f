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
    private readonly PriorityQueue<AccessEvent, (long Ticks, long Order)> _pending = new();
    private readonly HashSet<ulong> _seen = [];
    private readonly Queue<(long Ticks, ulong Hash)> _released = new();
    private long _order;
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

        if (e.HasSourceId && !_seen.Add(Hash(e.EventId)))
        {
            report.Reject(e.SourceFile ?? "(stream)", e.SourceLine, RejectReason.Duplicate, $"event_id '{e.EventId}' was already read");
            return;
        }

        _pending.Enqueue(e, (ticks, _order++));
        if (ticks > _newest)
        {
            _newest = ticks;
        }

        Release(_newest - _latenessTicks, ready);
    }

    public void Complete(List<AccessEvent> ready) => Release(long.MaxValue, ready);

    internal static ulong Hash(string id)
    {
        // FNV-1a, 64 bit.
        var hash = 14695981039346656037UL;
        foreach (var c in id)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return hash;
    }

    private void Release(long upTo, List<AccessEvent> ready)
    {
        while (_pending.TryPeek(out var next, out var key) && key.Ticks <= upTo)
        {
            _pending.Dequeue();
            _lastReleased = key.Ticks;
            if (next.HasSourceId)
            {
                _released.Enqueue((key.Ticks, Hash(next.EventId)));
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
