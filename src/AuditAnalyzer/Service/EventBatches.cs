using System.Buffers;
using System.Globalization;
using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Ingestion;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>A line of a batch that was not stored, and why.</summary>
internal sealed record LineError(long Line, string Reason, string Message);

/// <summary>What became of one batch.</summary>
internal sealed record BatchResult(int Lines, int Accepted, int Duplicates, IReadOnlyList<LineError> Errors);

/// <summary>
/// A batch of JSON Lines access events, validated with the same parser as the <c>analyze</c> verb and appended to the
/// ingestion log (<see cref="EventLog.IEventLog"/>) in one transaction: every valid line is stored (or found already
/// stored), every invalid one is returned with its line number. Idempotent on (client, <c>event_id</c>); a line without <c>event_id</c> is keyed by
/// a SHA-256 of its bytes, so re-sending the same batch never stores anything twice, across restarts too.
/// </summary>
internal static class EventBatches
{
    public const int MaxUserIdLength = 200;
    public const int MaxEventIdLength = 240;

    public static int PartitionOf(string userId, int partitions) =>
        (int)(XxHash32.HashToUInt32(Encoding.UTF8.GetBytes(userId)) % (uint)partitions);

    /// <summary>
    /// Parses the batch (already decompressed: gzip is not sniffed here, so only the caller decides how far a body may
    /// inflate); null when it has more than <see cref="LiveOptions.MaxBatchLines"/> lines (nothing is stored then).
    /// With a <paramref name="binding"/> (an HTTP sender), a line outside it is rejected with its reason. A line whose event
    /// time is older than <paramref name="now"/> (the host's clock) minus <see cref="LiveOptions.RetentionDays"/> is rejected
    /// as <c>older_than_retention</c>, from every sender.
    /// </summary>
    public static (List<StoredEventRow> Rows, List<LineError> Errors, int Lines, int Duplicates)? Parse(
        byte[] body, int length, string clientId, LiveOptions options, DateTimeOffset now, SenderBinding? binding = null)
    {
        var report = new IngestionReport();
        var errors = new List<LineError>();
        report.Rejected += r => errors.Add(new LineError(r.Line, RejectReasons.Name(r.Reason), r.Message));
        var parser = new JsonLinesEventParser(new EventFields("batch", report, new StringPool(10_000)));
        var rows = new List<StoredEventRow>();
        // Retention (Retention/EventRetention) deletes scored events older than this, and their idempotency keys with them.
        var cutoff = now - TimeSpan.FromDays(options.RetentionDays);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var duplicates = 0;
        var lines = 0;
        using var reader = new LineReader(new MemoryStream(body, 0, length, writable: false), bufferSize: 64 * 1024, detectGzip: false);
        while (reader.TryReadLine(out var line))
        {
            if (reader.LastLineTooLong || line.Length > options.MaxLineBytes)
            {
                errors.Add(new LineError(reader.LineNumber, RejectReasons.Name(RejectReason.LineTooLong), $"line longer than {options.MaxLineBytes} bytes (AuditAnalyzer:Live:MaxLineBytes)"));
                continue;
            }

            if (line.Trim(" \t"u8).IsEmpty)
            {
                continue;
            }

            if (++lines > options.MaxBatchLines)
            {
                return null;
            }

            var e = parser.Parse(line, reader.LineNumber);
            if (e is null)
            {
                continue;
            }

            // The columns are bounded (varchar on PostgreSQL and SQL Server): say so per line instead of failing the batch.
            if (e.UserId.Length > MaxUserIdLength || (e.HasSourceId && e.EventId.Length > MaxEventIdLength))
            {
                errors.Add(new LineError(reader.LineNumber, RejectReasons.Name(RejectReason.BadValue), e.UserId.Length > MaxUserIdLength
                    ? $"user_id is longer than {MaxUserIdLength} characters"
                    : $"event_id is longer than {MaxEventIdLength} characters"));
                continue;
            }

            if (binding?.Check(e) is { } refused)
            {
                errors.Add(new LineError(reader.LineNumber, RejectReasons.Name(refused.Reason), refused.Message));
                continue;
            }

            // Only events inside the retention window are stored: one older than it would be deleted by the next retention
            // pass, or was deleted already, so a re-sent copy would be stored and scored again (doubled findings, rewritten
            // history, baselines fed with stale days) whatever its event_id (issue 17, retention; SECURITY.md, rogue CRM app).
            if (e.UtcTicks < cutoff.UtcTicks)
            {
                errors.Add(new LineError(reader.LineNumber, RejectReasons.Name(RejectReason.OlderThanRetention), string.Create(CultureInfo.InvariantCulture,
                    $"the event time is before {cutoff.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}: events are kept {options.RetentionDays} days (AuditAnalyzer:Live:RetentionDays), so one that old is not stored")));
                continue;
            }

            var id = e.HasSourceId ? e.EventId : "sha256:" + Convert.ToHexStringLower(SHA256.HashData(line));
            var key = $"{clientId}:{id}";
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
                Partition = PartitionOf(e.UserId, options.Partitions),
                TimestampTicks = e.UtcTicks,
                Line = Encoding.UTF8.GetString(line),
                ReceivedTicks = now.UtcTicks,
            });
        }

        AnalyzerMetrics.Ingested(clientId, errors.Count, "rejected");
        AnalyzerMetrics.Ingested(clientId, duplicates, "duplicate");
        return (rows, errors, lines, duplicates);
    }

    /// <summary>Counts an appended batch in the ingestion metric: <paramref name="stored"/> new events, the others duplicates.</summary>
    public static void CountAppended(List<StoredEventRow> rows, int stored)
    {
        if (rows.Count > 0)
        {
            AnalyzerMetrics.Ingested(rows[0].ClientId, stored, "accepted");
            AnalyzerMetrics.Ingested(rows[0].ClientId, rows.Count - stored, "duplicate");
        }
    }

    /// <summary>The stored line as the scorer's event, with the id it was stored under as its evidence id.</summary>
    public static AccessEvent? ToEvent(StoredEventRow row, JsonLinesEventParser parser)
    {
        // The scorer reads every stored line: encode it into a reused buffer, not a new array per event.
        var max = Encoding.UTF8.GetMaxByteCount(row.Line.Length);
        var buffer = max <= ToEventBuffer.Length ? ToEventBuffer : ArrayPool<byte>.Shared.Rent(max);
        try
        {
            var length = Encoding.UTF8.GetBytes(row.Line, buffer);
            var e = parser.Parse(buffer.AsSpan(0, length), row.Seq);
            return e is null ? null : e with { EventId = row.EventKey[(row.ClientId.Length + 1)..], HasSourceId = true, SourceFile = null, SourceLine = row.Seq };
        }
        finally
        {
            if (!ReferenceEquals(buffer, ToEventBuffer))
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    // One per thread: a partition is scored by one thread at a time, and the parser keeps no reference to the bytes.
    [ThreadStatic]
    private static byte[]? _toEventBuffer;

    private static byte[] ToEventBuffer => _toEventBuffer ??= new byte[16 * 1024];
}
