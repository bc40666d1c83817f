using System.Threading.Channels;
using CrmSecurity.Identity.Data;

namespace CrmSecurity.Identity.Events;

/// <summary>
/// Writes access events to <c>identity_access_events</c> and to the log in batches, off the request path:
/// a token request costs a channel write, not a database round trip. Events still queued are written when
/// the host stops; a crash loses at most one flush interval (documented in the README).
/// </summary>
internal sealed partial class DatabaseEventSink(IServiceScopeFactory scopes, ILogger<DatabaseEventSink> logger)
    : BackgroundService, IAccessEventSink
{
    private const int BatchSize = 500;
    private static readonly TimeSpan GatherFor = TimeSpan.FromMilliseconds(100);

    // Bounded so a stuck database applies back-pressure instead of growing memory without limit.
    private readonly Channel<AccessEvent> _queue = Channel.CreateBounded<AccessEvent>(
        new BoundedChannelOptions(50_000) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    public ValueTask WriteAsync(AccessEvent accessEvent, CancellationToken cancellationToken) =>
        _queue.Writer.TryWrite(accessEvent) ? ValueTask.CompletedTask : _queue.Writer.WriteAsync(accessEvent, cancellationToken);

    /// <summary>Waits until everything queued so far is stored (tests, shutdown).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        while (_queue.Reader.Count > 0 || Volatile.Read(ref _writing) != 0)
        {
            await Task.Delay(10, cancellationToken);
        }
    }

    private int _writing;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<AccessEvent>(BatchSize);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                Interlocked.Exchange(ref _writing, 1);

                // Gather for a moment so a busy token endpoint writes hundreds of events per transaction, not one.
                if (_queue.Reader.Count < BatchSize)
                {
                    await Task.Delay(GatherFor, stoppingToken);
                }

                while (batch.Count < BatchSize && _queue.Reader.TryRead(out var item))
                {
                    batch.Add(item);
                }

                await StoreAsync(batch, CancellationToken.None);
                batch.Clear();
                Interlocked.Exchange(ref _writing, 0);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: store what is left below.
        }

        while (_queue.Reader.TryRead(out var item))
        {
            batch.Add(item);
        }

        if (batch.Count > 0)
        {
            await StoreAsync(batch, CancellationToken.None);
        }

        Interlocked.Exchange(ref _writing, 0);
    }

    private async Task StoreAsync(List<AccessEvent> batch, CancellationToken cancellationToken)
    {
        foreach (var e in batch)
        {
            LogEvent(logger, e.Action, e.Outcome, e.UserId, e.ClientId, e.SourceIp, e.Details, e.EventId);
        }

        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
            store.AccessEvents.AddRange(batch.Select(e => new AccessEventRecord
            {
                EventId = e.EventId,
                Timestamp = e.Timestamp,
                UserId = e.UserId,
                Action = e.Action,
                Tenant = e.Tenant,
                UserName = e.UserName,
                SessionId = e.SessionId,
                SourceIp = e.SourceIp,
                UserAgent = e.UserAgent,
                ClientId = e.ClientId,
                Outcome = e.Outcome,
                TargetUser = e.TargetUser,
                Privilege = e.Privilege,
                Details = e.Details,
            }));
            await store.SaveChangesAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The events were logged above; losing the rows must not take the token endpoint down.
            LogStoreFailed(logger, e, batch.Count);
        }
    }

    [LoggerMessage(EventId = 4100, Level = LogLevel.Information,
        Message = "Access event {Action} {Outcome} user {UserId} client {ClientId} from {SourceIp} ({Details}) {EventId}")]
    private static partial void LogEvent(ILogger logger, string action, string outcome, string userId, string? clientId, string? sourceIp, string? details, string eventId);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Error, Message = "Could not store {Count} access events in the database")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, int count);
}
