using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service.IngestionWrites;

/// <summary>
/// Ingestion's own bounded share of the host: at most <see cref="LiveOptions.MaxConcurrentBatches"/> batches are read,
/// parsed and stored at once, at most <see cref="LiveOptions.MaxQueuedBatches"/> wait (each for at most
/// <see cref="LiveOptions.BatchQueueTimeout"/>), and any more is refused at once. A saturating sender then costs the
/// host a fixed number of threads, connections and buffers, and token, decision and page requests keep their latency;
/// the sender retries after <c>Retry-After</c> and, ingestion being idempotent on <c>event_id</c>, loses nothing.
/// </summary>
internal sealed partial class IngestionGate(IOptions<LiveOptions> options, ILogger<IngestionGate> logger) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentBatches, options.Value.MaxConcurrentBatches);
    private int _waiting;

    /// <summary>The <c>Retry-After</c> value (RFC 9110 §10.2.3: delay-seconds), whole seconds.</summary>
    public string RetryAfterSeconds { get; } = ((long)Math.Ceiling(options.Value.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Batches being handled now (tests watch it to know ingestion is saturated).</summary>
    internal int InUse => options.Value.MaxConcurrentBatches - _slots.CurrentCount;

    /// <summary>A slot to handle one batch in, released by disposing it; null when ingestion is full (answer 429).</summary>
    public async ValueTask<Slot?> EnterAsync(CancellationToken cancellationToken)
    {
        if (_slots.Wait(0, CancellationToken.None))
        {
            return new Slot(_slots);
        }

        var settings = options.Value;
        if (Interlocked.Increment(ref _waiting) > settings.MaxQueuedBatches)
        {
            Interlocked.Decrement(ref _waiting);
            LogFull(logger, settings.MaxConcurrentBatches, settings.MaxQueuedBatches);
            return null;
        }

        try
        {
            if (await _slots.WaitAsync(settings.BatchQueueTimeout, cancellationToken))
            {
                return new Slot(_slots);
            }

            LogFull(logger, settings.MaxConcurrentBatches, settings.MaxQueuedBatches);
            return null;
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <summary>Whether a failure means the event store cannot be reached or written now (503), rather than a bug (500).</summary>
    public bool IsStoreUnavailable(Exception exception)
    {
        if (exception is DbException or DbUpdateException or TimeoutException || exception.InnerException is DbException)
        {
            LogStoreUnavailable(logger, exception.GetType().Name);
            return true;
        }

        return false;
    }

    public void Dispose() => _slots.Dispose();

    /// <summary>One batch's turn; disposing it lets the next batch in.</summary>
    internal sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                slots.Release();
            }
        }
    }

    [LoggerMessage(EventId = 6140, Level = LogLevel.Debug, Message = "Ingestion is full ({Concurrent} batches stored at once, {Queued} waiting): a batch was refused with 429")]
    private static partial void LogFull(ILogger logger, int concurrent, int queued);

    // The exception's type only: a provider's message may carry connection details.
    [LoggerMessage(EventId = 6141, Level = LogLevel.Warning, Message = "The event store could not take a batch ({ExceptionType}); the sender was answered 503 with Retry-After")]
    private static partial void LogStoreUnavailable(ILogger logger, string exceptionType);
}
