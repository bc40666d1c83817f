using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>
/// One event behind a finding, as the timeline shows it: what was done, never who (the finding says who).
/// <see cref="ClientId"/> is the client that sent the event (its own token), not what the line claimed.
/// </summary>
internal sealed record EvidenceEvent(
    string EventId, DateTimeOffset Timestamp, string Action, string? Entity, long RecordCount, string? Outcome, string? SourceIp, string? Country, string? ClientId);

/// <summary>Reads the stored events behind a finding, in time order.</summary>
internal static class Evidence
{
    /// <summary>Most events a timeline shows.</summary>
    public const int Limit = 500;

    public static async Task<List<EvidenceEvent>> LoadAsync(
        LiveDbContext db, string userId, long fromTicks, long toTicks, IReadOnlyCollection<string> eventIds, CancellationToken cancellationToken)
    {
        var wanted = eventIds.ToHashSet(StringComparer.Ordinal);
        var rows = await db.Events.AsNoTracking()
            .Where(e => e.UserId == userId && e.TimestampTicks >= fromTicks && e.TimestampTicks <= toTicks)
            .OrderBy(e => e.TimestampTicks).ThenBy(e => e.Seq)
            .Select(e => new { e.EventKey, e.ClientId, e.Line, e.TimestampTicks })
            .Take(20 * Limit)
            .ToListAsync(cancellationToken);
        var events = new List<EvidenceEvent>();
        foreach (var row in rows)
        {
            var id = row.EventKey.Length > row.ClientId.Length ? row.EventKey[(row.ClientId.Length + 1)..] : row.EventKey;
            if (!wanted.Contains(id))
            {
                continue;
            }

            using var json = JsonDocument.Parse(row.Line);
            var e = json.RootElement;
            events.Add(new EvidenceEvent(
                id,
                new DateTimeOffset(row.TimestampTicks, TimeSpan.Zero),
                Text(e, "action") ?? "",
                Text(e, "entity"),
                e.TryGetProperty("record_count", out var count) && count.ValueKind == JsonValueKind.Number && count.TryGetInt64(out var n) ? n : 1,
                Text(e, "outcome"),
                Text(e, "source_ip"),
                Text(e, "country"),
                // The authenticated sender, never the line's own client_id: a sender could name any client there.
                row.ClientId));
            if (events.Count == Limit)
            {
                break;
            }
        }

        return events;
    }

    /// <summary>The entities as stored for suppression matching: lower case, comma-framed (<c>,contact,account,</c>).</summary>
    public static string EntityList(IEnumerable<EvidenceEvent> events)
    {
        var entities = events.Select(e => e.Entity).OfType<string>().Select(e => e.ToLowerInvariant().Replace(",", "", StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var list = "," + string.Concat(entities.Select(e => e + ","));
        return list.Length <= 2000 ? list : list[..list.LastIndexOf(',', 1999)] + ",";
    }

    public static IReadOnlyCollection<string> Entities(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries);

    private static string? Text(JsonElement e, string name) =>
        e.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
