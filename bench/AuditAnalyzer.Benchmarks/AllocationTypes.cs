using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Globalization;

namespace CrmSecurity.AuditAnalyzer.Benchmarks;

/// <summary>
/// Samples allocations by type in this process through the runtime's own event source (one GCAllocationTick event
/// per roughly 100 KB allocated, naming the type of the object that crossed the mark), for <c>throughput --alloc</c>:
/// where the scorer's garbage comes from, without a profiler on the machine.
/// </summary>
internal sealed class AllocationTypes : EventListener
{
    private const int AllocationTick = 10;
    private const int HeapStats = 4;
    private long _promoted0;
    private long _promoted1;
    private int _collections;
    private readonly ConcurrentDictionary<string, long> _bytes = new(StringComparer.Ordinal);
    private volatile bool _on;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword: allocation ticks are verbose
        }
    }

    public void Start()
    {
        _bytes.Clear();
        _promoted0 = _promoted1 = _collections = 0;
        _on = true;
    }

    public void Stop() => _on = false;

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!_on || e.Payload is null || e.PayloadNames is null)
        {
            return;
        }

        if (e.EventId == HeapStats)
        {
            // After each collection: bytes that survived gen0 (now in gen1) and gen1 (now in gen2) in that collection.
            _promoted0 += Convert.ToInt64(e.Payload[e.PayloadNames.IndexOf("TotalPromotedSize0")], CultureInfo.InvariantCulture);
            _promoted1 += Convert.ToInt64(e.Payload[e.PayloadNames.IndexOf("TotalPromotedSize1")], CultureInfo.InvariantCulture);
            _collections++;
            return;
        }

        if (e.EventId != AllocationTick)
        {
            return;
        }

        var type = e.PayloadNames.IndexOf("TypeName") is var t and >= 0 ? e.Payload[t] as string ?? "?" : "?";
        var amount = e.PayloadNames.IndexOf("AllocationAmount64") is var a and >= 0 ? Convert.ToInt64(e.Payload[a], CultureInfo.InvariantCulture) : 100_000;
        _bytes.AddOrUpdate(type, amount, (_, v) => v + amount);
    }

    public void Print(long events, int top = 15)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"    promoted in {_collections} collections: {_promoted0 / 1048576.0:N0} MiB out of gen0 ({_promoted0 / (double)Math.Max(1, events):0.0} B/event), {_promoted1 / 1048576.0:N0} MiB out of gen1"));
        var total = _bytes.Values.Sum();
        foreach (var (type, bytes) in _bytes.OrderByDescending(p => p.Value).Take(top))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {bytes * 100.0 / Math.Max(1, total),5:0.0}%  {bytes / (double)Math.Max(1, events),7:0.0} B/event  {type}"));
        }
    }
}
