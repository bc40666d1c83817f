using CrmSecurity.Identity.Data;
using CrmSecurity.Shared;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Events;

/// <summary>
/// Writes access events to <c>identity_access_events</c> and to the log in batches, off the request path:
/// a token request costs a channel write, not a database round trip. Events still queued are written when
/// the host stops; a crash loses at most one flush interval (documented in docs/limits.md).
/// </summary>
internal sealed partial class DatabaseEventSink(IServiceScopeFactory scopes, ILogger<DatabaseEventSink> logger)
    : BatchingQueue<AccessEvent>(50_000, waitWhenFull: true), IAccessEventSink
{
    // Waits when full: a stuck database applies back-pressure instead of losing the record of who did what.
    public ValueTask WriteAsync(AccessEvent accessEvent, CancellationToken cancellationToken) => EnqueueAsync(accessEvent, cancellationToken);

    protected override async Task StoreAsync(List<AccessEvent> batch)
    {
        foreach (var e in batch)
        {
            LogEvent(logger, e.Action, e.Outcome, e.UserId, e.ClientId, e.SourceIp, e.Details, e.EventId);
        }

        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
            await InsertAsync(store, batch, CancellationToken.None);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The events were logged above; losing the rows must not take the token endpoint down.
            LogStoreFailed(logger, e, batch.Count);
        }
    }

    /// <summary>Only after the host stopped (this queue waits when full): the log keeps the event the table will not.</summary>
    protected override void OnDropped(AccessEvent item, long dropped)
    {
        LogEvent(logger, item.Action, item.Outcome, item.UserId, item.ClientId, item.SourceIp, item.Details, item.EventId);
        LogDropped(logger, dropped);
    }

    private static async Task InsertAsync(IdentityStore store, List<AccessEvent> batch, CancellationToken cancellationToken)
    {
        var insert = PreparedInsert<AccessEventRecord>.For(store);
        await store.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var transaction = await store.Database.GetDbConnection().BeginTransactionAsync(cancellationToken);
            await insert.ExecuteAsync(transaction, batch.Select(Record), cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }
        finally
        {
            await store.Database.CloseConnectionAsync();
        }
    }

    private static AccessEventRecord Record(AccessEvent e) => new()
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
    };

    [LoggerMessage(EventId = 4100, Level = LogLevel.Information,
        Message = "Access event {Action} {Outcome} user {UserId} client {ClientId} from {SourceIp} ({Details}) {EventId}")]
    private static partial void LogEvent(ILogger logger, string action, string outcome, string userId, string? clientId, string? sourceIp, string? details, string eventId);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Error, Message = "Could not store {Count} access events in the database")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Warning, Message = "{Dropped} access events arrived after the host stopped: logged, not stored")]
    private static partial void LogDropped(ILogger logger, long dropped);
}
