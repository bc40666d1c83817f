using System.Threading.Channels;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

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
            await InsertAsync(store, batch, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The events were logged above; losing the rows must not take the token endpoint down.
            LogStoreFailed(logger, e, batch.Count);
        }
    }

    /// <summary>
    /// One prepared INSERT executed per event inside one transaction: the table is append-only, so EF Core's change
    /// tracking buys nothing here and cost a tenth of the token endpoint's CPU. Table, column names, quoting and
    /// value conversions come from the EF model, so every provider gets its own correct SQL.
    /// </summary>
    private static async Task InsertAsync(IdentityStore store, List<AccessEvent> batch, CancellationToken cancellationToken)
    {
        var insert = EventInsert.For(store);
        var connection = store.Database.GetDbConnection();
        await store.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = insert.Sql;
            var parameters = insert.Columns.Select((_, index) =>
            {
                var parameter = command.CreateParameter();
                parameter.ParameterName = "@p" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);
                command.Parameters.Add(parameter);
                return parameter;
            }).ToArray();

            foreach (var e in batch)
            {
                var record = new AccessEventRecord
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
                for (var index = 0; index < parameters.Length; index++)
                {
                    parameters[index].Value = insert.Columns[index].Read(record) ?? DBNull.Value;
                }

                await command.ExecuteNonQueryAsync(cancellationToken);
            }

            await transaction.CommitAsync(cancellationToken);
        }
        finally
        {
            await store.Database.CloseConnectionAsync();
        }
    }

    private sealed record EventColumn(Func<AccessEventRecord, object?> Read);

    private sealed record EventInsert(string Sql, EventColumn[] Columns)
    {
        private static EventInsert? _cached;

        public static EventInsert For(IdentityStore store)
        {
            if (_cached is { } cached)
            {
                return cached;
            }

            var entity = store.Model.FindEntityType(typeof(AccessEventRecord))!;
            var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
            var sql = store.GetService<ISqlGenerationHelper>();
            var properties = entity.GetProperties().ToArray();
            var columns = properties.Select(property =>
            {
                var getter = property.GetGetter();
                var converter = property.GetValueConverter() ?? property.GetTypeMapping().Converter;
                return new EventColumn(record =>
                {
                    var value = getter.GetClrValueUsingContainingEntity(record);
                    return value is null || converter is null ? value : converter.ConvertToProvider(value);
                });
            }).ToArray();
            var names = string.Join(", ", properties.Select(p => sql.DelimitIdentifier(p.GetColumnName(table)!)));
            var values = string.Join(", ", properties.Select((_, index) => "@p" + index.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            return _cached = new EventInsert($"INSERT INTO {sql.DelimitIdentifier(table.Name, table.Schema)} ({names}) VALUES ({values})", columns);
        }
    }

    [LoggerMessage(EventId = 4100, Level = LogLevel.Information,
        Message = "Access event {Action} {Outcome} user {UserId} client {ClientId} from {SourceIp} ({Details}) {EventId}")]
    private static partial void LogEvent(ILogger logger, string action, string outcome, string userId, string? clientId, string? sourceIp, string? details, string eventId);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Error, Message = "Could not store {Count} access events in the database")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, int count);
}
