using System.Runtime.InteropServices;
using System.Text;
using CrmSecurity.AuditAnalyzer.Service.EventLog;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>What became of events handed to <see cref="ILiveEventWriter"/>.</summary>
/// <param name="Lines">Non-empty lines read.</param>
/// <param name="Stored">Events stored now (new to the table).</param>
/// <param name="Duplicates">Events already stored under the same client and <c>event_id</c>.</param>
/// <param name="Rejected">Lines that are not valid access events (missing timestamp, user_id or action, bad JSON).</param>
public sealed record LiveWriteResult(int Lines, int Stored, int Duplicates, int Rejected);

/// <summary>
/// Stores access events in the live event log (the live event table) from inside the process, exactly as
/// <c>POST /analyzer/events</c> would for the sending client: same parser, same idempotency key (client and <c>event_id</c>),
/// same partitions. For a module of the same host (Identity) that must not go through HTTP and a token.
/// </summary>
public interface ILiveEventWriter
{
    /// <summary>Validates and stores JSON Lines access events (design.md's contract); any number of lines.</summary>
    Task<LiveWriteResult> WriteAsync(string clientId, ReadOnlyMemory<byte> jsonLines, CancellationToken cancellationToken);

    /// <summary>
    /// Stores events that trusted code of this process has already written as contract lines, without parsing the lines
    /// again: the same rows, idempotency key and partitions as <see cref="WriteAsync(string, ReadOnlyMemory{byte}, CancellationToken)"/>
    /// with the same lines. An event whose fields the parser would question (an unknown action, a missing or over-long id,
    /// an over-long line, ...) goes through that parser instead, and is rejected or stored exactly as it would be there.
    /// </summary>
    Task<LiveWriteResult> WriteValidatedAsync(string clientId, IReadOnlyList<ContractLine> events, CancellationToken cancellationToken);
}

/// <summary>
/// One access event as its design.md contract JSON line, with the fields the live table keys, partitions and orders on.
/// For <see cref="ILiveEventWriter.WriteValidatedAsync"/>: the caller (code of this process, never a client's input)
/// guarantees that <see cref="Line"/> is the JSON object of this same event, e.g. by serializing it right before.
/// </summary>
/// <param name="eventId">The line's <c>event_id</c>.</param>
/// <param name="userId">The line's <c>user_id</c>.</param>
/// <param name="timestamp">The line's <c>timestamp</c>.</param>
/// <param name="action">The line's <c>action</c>.</param>
/// <param name="outcome">The line's <c>outcome</c> (null when it has none).</param>
/// <param name="line">The JSON object on one line, without the line break.</param>
public sealed class ContractLine(string eventId, string userId, DateTimeOffset timestamp, string action, string? outcome, string line)
{
    /// <summary>The line's <c>event_id</c>.</summary>
    public string EventId { get; } = eventId;

    /// <summary>The line's <c>user_id</c>.</summary>
    public string UserId { get; } = userId;

    /// <summary>The line's <c>timestamp</c>.</summary>
    public DateTimeOffset Timestamp { get; } = timestamp;

    /// <summary>The line's <c>action</c>.</summary>
    public string Action { get; } = action;

    /// <summary>The line's <c>outcome</c> (null when it has none).</summary>
    public string? Outcome { get; } = outcome;

    /// <summary>The JSON object on one line, without the line break.</summary>
    public string Line { get; } = line;
}

internal sealed class LiveEventWriter(IServiceScopeFactory scopes, IOptions<LiveOptions> options, TimeProvider time) : ILiveEventWriter
{
    public async Task<LiveWriteResult> WriteAsync(string clientId, ReadOnlyMemory<byte> jsonLines, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(clientId);
        var settings = options.Value;
        var body = MemoryMarshal.TryGetArray(jsonLines, out var segment) && segment.Offset == 0 ? segment.Array! : jsonLines.ToArray();
        var length = jsonLines.Length;
        await using var scope = scopes.CreateAsyncScope();
        var log = scope.ServiceProvider.GetRequiredService<IEventLog>();
        var total = new LiveWriteResult(0, 0, 0, 0);

        // The parser refuses more than MaxBatchLines at once (it bounds an HTTP request): cut at line ends instead.
        var start = 0;
        while (start < length)
        {
            var end = ChunkEnd(body, start, length, settings.MaxBatchLines);
            // Usually one chunk: parsed in place, not copied.
            var (chunk, chunkLength) = start == 0 ? (body, end) : (body.AsSpan(start, end - start).ToArray(), end - start);
            var parsed = EventBatches.Parse(chunk, chunkLength, clientId, settings, time.GetUtcNow())
                ?? throw new InvalidOperationException("A chunk cut at MaxBatchLines line ends was refused as too long.");
            var stored = parsed.Rows.Count == 0 ? 0 : await AppendAsync(log, parsed.Rows, cancellationToken);
            total = new LiveWriteResult(
                total.Lines + parsed.Lines,
                total.Stored + stored,
                total.Duplicates + parsed.Duplicates + (parsed.Rows.Count - stored),
                total.Rejected + parsed.Errors.Count);
            start = end;
        }

        return total;
    }

    public async Task<LiveWriteResult> WriteValidatedAsync(string clientId, IReadOnlyList<ContractLine> events, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(clientId);
        ArgumentNullException.ThrowIfNull(events);
        var settings = options.Value;
        var now = time.GetUtcNow().UtcTicks;
        // An event older than the retention is refused by the parser (older_than_retention), as over HTTP: send it there.
        var cutoff = now - TimeSpan.FromDays(settings.RetentionDays).Ticks;
        var rows = new List<StoredEventRow>(events.Count);
        var keys = new HashSet<string>(events.Count, StringComparer.Ordinal);
        var duplicates = 0;
        StringBuilder? questioned = null;
        foreach (var e in events)
        {
            if (!PassesParserRules(e, settings) || e.Timestamp.UtcTicks < cutoff)
            {
                // Whatever the parser would reject (or store differently) goes through it, line by line as over HTTP.
                (questioned ??= new StringBuilder()).Append(e.Line).Append('\n');
                continue;
            }

            // EventBatches.Parse's row for the same line: key, user, partition, event time and the line itself.
            var key = string.Concat(clientId, ":", e.EventId);
            if (!keys.Add(key))
            {
                duplicates++;
                continue;
            }

            rows.Add(new StoredEventRow
            {
                EventKey = key,
                ClientId = clientId,
                UserId = e.UserId,
                Partition = EventBatches.PartitionOf(e.UserId, settings.Partitions),
                TimestampTicks = e.Timestamp.UtcTicks,
                Line = e.Line,
                ReceivedTicks = now,
            });
        }

        AnalyzerMetrics.Ingested(clientId, duplicates, "duplicate");
        var stored = 0;
        if (rows.Count > 0)
        {
            await using var scope = scopes.CreateAsyncScope();
            stored = await AppendAsync(scope.ServiceProvider.GetRequiredService<IEventLog>(), rows, cancellationToken);
        }

        var total = new LiveWriteResult(rows.Count + duplicates, stored, duplicates + (rows.Count - stored), 0);
        if (questioned is null)
        {
            return total;
        }

        var rest = await WriteAsync(clientId, Encoding.UTF8.GetBytes(questioned.ToString()), cancellationToken);
        return new LiveWriteResult(total.Lines + rest.Lines, total.Stored + rest.Stored, total.Duplicates + rest.Duplicates, rest.Rejected);
    }

    /// <summary>
    /// True when <see cref="EventBatches.Parse"/> would store <paramref name="e"/>'s line as it is, keyed by its event id: the
    /// checks of <c>EventFields.Build</c> and of the batch (line length, id lengths), on fields the caller vouches for.
    /// </summary>
    private static bool PassesParserRules(ContractLine e, LiveOptions settings) =>
        e.Line is { Length: > 0 } line && line[0] == '{' && line.AsSpan().IndexOfAny('\n', '\r') < 0
        && (line.Length <= settings.MaxLineBytes / 3 || Encoding.UTF8.GetByteCount(line) <= settings.MaxLineBytes)
        && e.UserId is { Length: > 0 and <= EventBatches.MaxUserIdLength }
        && e.EventId is { Length: > 0 and <= EventBatches.MaxEventIdLength }
        // The parser trims and reads at most 64 bytes of an action; anything unusual is left to it.
        && e.Action is { Length: > 0 and < 64 } action && !char.IsWhiteSpace(action[0]) && !char.IsWhiteSpace(action[^1])
        && Events.AccessActions.TryParse(action, out _)
        && e.Outcome is null or "" or "success" or "denied" or "error";

    /// <summary>Appends the rows to the ingestion log (durable on return); returns how many were new.</summary>
    private static async Task<int> AppendAsync(IEventLog log, List<StoredEventRow> rows, CancellationToken cancellationToken)
    {
        var stored = await log.AppendAsync(rows, handedOver: null, cancellationToken);
        EventBatches.CountAppended(rows, stored);
        return stored;
    }

    /// <summary>The end (exclusive) of the chunk from <paramref name="start"/> holding at most <paramref name="lines"/> line breaks.</summary>
    private static int ChunkEnd(byte[] body, int start, int length, int lines)
    {
        var position = start;
        for (var seen = 0; seen < lines; seen++)
        {
            var next = Array.IndexOf(body, (byte)'\n', position, length - position);
            if (next < 0)
            {
                return length;
            }

            position = next + 1;
        }

        return position;
    }
}
