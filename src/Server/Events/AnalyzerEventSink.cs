using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Identity.Events;
using CrmSecurity.Shared;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Server.Events;

/// <summary>
/// Hands every Identity access event (sign-ins, failed sign-ins, tokens, admin changes, and the crypto decrypts that
/// pass through <see cref="IAccessEventLog"/>) to the analyzer's live event table under the client id
/// <see cref="ClientId"/>, so the background scorer sees them without an HTTP hop. Off the request path: a request
/// costs a channel write; a background writer stores batches; what is queued is stored when the host stops.
/// </summary>
/// <remarks>
/// Identity's own actions (<c>token_issue</c>, <c>lockout</c>, ...) are not in the analyzer's action list, which
/// rejects unknown actions: <see cref="ToContract"/> maps each onto the contract action it is (a token grant is a
/// sign-in of its subject, a refused one a failed sign-in, ...) and keeps Identity's name at the start of <c>details</c>.
/// The queue is bounded and never waits: when the database is stuck and the queue is full, the analyzer's copy of an
/// event is dropped (counted and logged) rather than holding a token request. Identity's own table still has it.
/// </remarks>
internal sealed partial class AnalyzerEventSink(ILiveEventWriter writer, IOptions<IdentityEventsOptions> options, ILogger<AnalyzerEventSink> logger)
    : BatchingQueue<AccessEvent>(50_000, waitWhenFull: false), IAccessEventSink
{
    /// <summary>The sending client the events are stored under (<c>identity:{event_id}</c>).</summary>
    public const string ClientId = "identity";

    private readonly bool _enabled = options.Value.Enabled;

    // Never waits: when the database is stuck the analyzer's copy is dropped rather than holding a token request.
    public ValueTask WriteAsync(AccessEvent accessEvent, CancellationToken cancellationToken) =>
        _enabled ? EnqueueAsync(accessEvent, cancellationToken) : ValueTask.CompletedTask;

    protected override void OnDropped(AccessEvent item, long dropped)
    {
        if (dropped % 1000 == 1)
        {
            LogDropped(logger, dropped);
        }
    }

    protected override Task StoreAsync(List<AccessEvent> batch) => StoreBatchAsync(batch);

    /// <summary>What the background writer does with one batch; called directly by the hand-off benchmark and tests.</summary>
    internal async Task StoreBatchAsync(List<AccessEvent> batch)
    {
        try
        {
            var result = await writer.WriteValidatedAsync(ClientId, Lines(batch), CancellationToken.None);
            if (result.Rejected > 0)
            {
                LogRejected(logger, result.Rejected, batch.Count);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Identity's own sink keeps the events; the analyzer's copy must not take the token endpoint down.
            LogStoreFailed(logger, e, batch.Count);
        }
    }

    /// <summary>
    /// Each event as its contract line, written by the source-generated serializer into one buffer reused for the batch;
    /// the writer stores these without parsing them again (they are ours, made just now). Byte for byte the line the
    /// reflection serializer wrote before, which is what <c>POST /analyzer/events</c> stores for the same event.
    /// </summary>
    internal static List<ContractLine> Lines(List<AccessEvent> batch)
    {
        var lines = new List<ContractLine>(batch.Count);
        var buffer = new ArrayBufferWriter<byte>(1024);
        using var json = new Utf8JsonWriter(buffer);
        foreach (var e in batch)
        {
            var contract = ToContract(e);
            JsonSerializer.Serialize(json, contract, AnalyzerEventJson.Default.AccessEvent);
            lines.Add(new ContractLine(contract.EventId, contract.UserId, contract.Timestamp, contract.Action, contract.Outcome,
                Encoding.UTF8.GetString(buffer.WrittenSpan)));
            buffer.ResetWrittenCount();
            json.Reset();
        }

        return lines;
    }

    /// <summary>The event in design.md's access-event contract, with an action the analyzer scores.</summary>
    internal static AccessEvent ToContract(AccessEvent e)
    {
        var (action, entity) = e.Action switch
        {
            AccessActions.TokenIssue or AccessActions.TokenRefresh or AccessActions.TokenExchange => (AccessActions.Login, null),
            AccessActions.TokenRejected or AccessActions.Lockout => (AccessActions.LoginFailed, null),
            AccessActions.TokenRevoke => (AccessActions.Logout, null),
            AccessActions.PasswordChange or AccessActions.MfaChange => ("update", "user"),
            _ => (e.Action, (string?)null),
        };
        var mapped = action != e.Action;
        return e with
        {
            Action = action,
            Entity = entity ?? e.Entity,
            RecordId = entity is null ? e.RecordId : e.TargetUser ?? e.UserId,
            Details = !mapped ? e.Details : e.Details is null ? e.Action : $"{e.Action}; {e.Details}",
        };
    }

    [LoggerMessage(EventId = 1200, Level = LogLevel.Warning,
        Message = "The analyzer's event queue is full or closed: {Dropped} Identity events so far were not handed to the analyzer (Identity's table has them)")]
    private static partial void LogDropped(ILogger logger, long dropped);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Error, Message = "Could not store {Count} Identity access events for the analyzer")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning, Message = "The analyzer rejected {Rejected} of {Count} Identity access events as invalid")]
    private static partial void LogRejected(ILogger logger, int rejected, int count);
}

/// <summary>
/// <c>AuditAnalyzer:IdentityEvents:Enabled</c> (default <c>true</c>): whether Identity's access events are copied to the
/// analyzer in-process. Off, the analyzer scores only what is sent to it; Identity's own table keeps every event either way.
/// Mainly for pricing the hand-off (bench/Identity.Benchmarks/handoff.sh); a value that is not a boolean stops start-up (exit 78).
/// </summary>
internal sealed class IdentityEventsOptions
{
    public const string Section = "AuditAnalyzer:IdentityEvents";

    public bool Enabled { get; set; } = true;
}

/// <summary>Identity's access event in its contract JSON (nulls left out), serialized without reflection.</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AccessEvent))]
internal sealed partial class AnalyzerEventJson : JsonSerializerContext;
