using System.Data.Common;
using System.Runtime.InteropServices;
using CrmSecurity.AuditAnalyzer.Service.IngestionWrites;
using CrmSecurity.Shared;
using Microsoft.EntityFrameworkCore;
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
/// Stores access events in the live event table from inside the process, exactly as <c>POST /analyzer/events</c>
/// would for the sending client: same parser, same idempotency key (client and <c>event_id</c>),
/// same partitions. For a module of the same host (Identity) that must not go through HTTP and a token.
/// </summary>
public interface ILiveEventWriter
{
    /// <summary>Validates and stores JSON Lines access events (design.md's contract); any number of lines.</summary>
    Task<LiveWriteResult> WriteAsync(string clientId, ReadOnlyMemory<byte> jsonLines, CancellationToken cancellationToken);
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
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
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
            var stored = parsed.Rows.Count == 0 ? 0 : await StoreAsync(db, parsed.Rows, settings.MaxUncommittedBatches, cancellationToken);
            total = new LiveWriteResult(
                total.Lines + parsed.Lines,
                total.Stored + stored,
                total.Duplicates + parsed.Duplicates + (parsed.Rows.Count - stored),
                total.Rejected + parsed.Errors.Count);
            start = end;
        }

        return total;
    }

    /// <summary>
    /// Stores the rows not stored before. On SQL Server: the table is append-only, so one prepared INSERT per row in one transaction
    /// replaces EF Core's change tracking (ten times faster for a large batch such as the demo history); a key taken
    /// meanwhile by a concurrent writer falls back to <see cref="EventBatches.StoreAsync"/>, which re-checks.
    /// </summary>
    private static async Task<int> StoreAsync(LiveDbContext db, List<StoredEventRow> rows, int maxUncommitted, CancellationToken cancellationToken)
    {
        if (BatchInserts.Supports(db))
        {
            // SQLite and PostgreSQL: the HTTP path's insert that skips stored keys, committed together with queued HTTP batches.
            return await EventBatches.StoreAsync(db, rows, maxUncommitted, cancellationToken);
        }

        var keys = rows.Select(r => r.EventKey).ToList();
        var known = (await db.Events.AsNoTracking().Where(e => keys.Contains(e.EventKey)).Select(e => e.EventKey).ToListAsync(cancellationToken))
            .ToHashSet(StringComparer.Ordinal);
        var fresh = rows.Where(r => !known.Contains(r.EventKey)).ToList();
        if (fresh.Count == 0)
        {
            AnalyzerMetrics.Ingested(rows[0].ClientId, rows.Count, "duplicate");
            return 0;
        }

        var insert = PreparedInsert<StoredEventRow>.For(db);
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var transaction = await db.Database.GetDbConnection().BeginTransactionAsync(cancellationToken);
            try
            {
                await insert.ExecuteAsync(transaction, fresh, cancellationToken);
                await transaction.CommitAsync(cancellationToken);
                AnalyzerMetrics.Ingested(rows[0].ClientId, fresh.Count, "accepted");
                AnalyzerMetrics.Ingested(rows[0].ClientId, rows.Count - fresh.Count, "duplicate");
            }
            catch (DbException)
            {
                await transaction.RollbackAsync(cancellationToken);
                return await EventBatches.StoreAsync(db, fresh, maxUncommitted, cancellationToken);
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }

        return fresh.Count;
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
