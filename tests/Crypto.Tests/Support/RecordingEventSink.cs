using System.Collections.Concurrent;
using CrmSecurity.Crypto.Events;

namespace CrmSecurity.Crypto.Tests.Support;

public sealed class RecordingEventSink : ICryptoEventSink
{
    public ConcurrentQueue<CryptoAccessEvent> Events { get; } = new();

    public ValueTask WriteAsync(CryptoAccessEvent accessEvent, CancellationToken cancellationToken)
    {
        Events.Enqueue(accessEvent);
        return ValueTask.CompletedTask;
    }
}
