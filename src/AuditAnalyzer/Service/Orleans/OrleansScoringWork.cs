using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service.Orleans;

/// <summary>What this silo's partition grains have scored (for tests and operators: is work spread across the silos).</summary>
internal sealed class OrleansScoringWork(IOptions<LiveOptions> options)
{
    private readonly ConcurrentDictionary<int, long> _events = new();

    /// <summary>This silo's name in the lease table (each grain activation adds a suffix of its own).</summary>
    public string Silo { get; } = PartitionScoring.OwnerOf(options.Value);

    /// <summary>Events scored and saved here, by partition.</summary>
    public IReadOnlyDictionary<int, long> EventsByPartition => _events;

    public void Scored(int partition, long events) => _events.AddOrUpdate(partition, events, (_, total) => total + events);
}
