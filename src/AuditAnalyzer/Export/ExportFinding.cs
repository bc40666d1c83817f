using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>One reason of a finding, as stored: "typical vs actual".</summary>
internal sealed record ExportReason(string Code, string Detector, double Score, string Text, double? Typical, double? Actual);

/// <summary>
/// The review state of a finding (status and disposition from the review workflow, through
/// <see cref="IFindingReviewStates"/>); null for a finding stored before the review tables knew it.
/// </summary>
internal sealed record ReviewState(string? Status, string? Disposition);

/// <summary>A finding change as the exports see it: the stored row, its JSON parsed, and optionally its review state.</summary>
internal sealed record ExportFinding
{
    public required string Id { get; init; }

    public required string UserId { get; init; }

    public string? UserName { get; init; }

    /// <summary>The user's pseudonym (what the review queue shows).</summary>
    public string Pseudonym { get; init; } = "";

    /// <summary>Whether <see cref="UserId"/> and <see cref="UserName"/> are the real identity (false: the pseudonym, no name).</summary>
    public bool Identified { get; init; } = true;

    public string? PeerGroup { get; init; }

    public required string Detector { get; init; }

    public required IReadOnlyList<string> Detectors { get; init; }

    public required double Score { get; init; }

    public required Severity Severity { get; init; }

    public required DateTimeOffset WindowStart { get; init; }

    public required DateTimeOffset WindowEnd { get; init; }

    public required DateTimeOffset DetectedAt { get; init; }

    /// <summary>When the scorer last saved this finding (each change moves it on).</summary>
    public required DateTimeOffset UpdatedAt { get; init; }

    /// <summary>Strongest first.</summary>
    public required IReadOnlyList<ExportReason> Reasons { get; init; }

    public required IReadOnlyList<string> EventIds { get; init; }

    public bool Learning { get; init; }

    public ReviewState? Review { get; init; }

    /// <summary>
    /// Fingerprint of what a receiver sees except the version time: equal for a re-save that changed nothing.
    /// SHA-256 of the stored finding JSON (which has no update time) and the review state, first 16 bytes in hex.
    /// </summary>
    public required string Fingerprint { get; init; }

    /// <summary>Position of this change in the feed.</summary>
    public FeedCursor Cursor => new(UpdatedAt.UtcTicks, Id);

    public static Severity ParseSeverity(string? name) => name switch
    {
        "critical" => Severity.Critical,
        "high" => Severity.High,
        "medium" => Severity.Medium,
        _ => Severity.Low,
    };

    /// <summary>Reads a stored finding; the row's columns win over its JSON where both exist.</summary>
    public static ExportFinding FromRow(StoredFindingRow row, ReviewState? review = null)
    {
        // A row whose JSON cannot be read still exports from its columns: one bad row must not stop a feed for good.
        using var document = TryParse(row.Json);
        using var empty = JsonDocument.Parse("{}");
        var json = document?.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement : empty.RootElement;
        return new ExportFinding
        {
            Id = row.Id,
            UserId = row.UserId,
            UserName = row.UserName,
            Pseudonym = row.Pseudonym,
            PeerGroup = json.TryGetProperty("peer_group", out var peer) && peer.ValueKind == JsonValueKind.String ? peer.GetString() : null,
            Detector = row.Detector,
            Detectors = Strings(json, "detectors") is { Count: > 0 } detectors ? detectors : [row.Detector],
            Score = row.Score,
            Severity = ParseSeverity(row.Severity),
            WindowStart = new DateTimeOffset(row.WindowStartTicks, TimeSpan.Zero),
            WindowEnd = new DateTimeOffset(row.WindowEndTicks, TimeSpan.Zero),
            DetectedAt = new DateTimeOffset(row.DetectedTicks, TimeSpan.Zero),
            UpdatedAt = new DateTimeOffset(row.UpdatedTicks, TimeSpan.Zero),
            Reasons = ReadReasons(json),
            EventIds = Strings(json, "event_ids"),
            Learning = json.TryGetProperty("learning", out var learning) && learning.ValueKind == JsonValueKind.True,
            Review = review,
            Fingerprint = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
                Encoding.UTF8.GetBytes($"{row.Json}\n{row.UserName}\n{review?.Status}\n{review?.Disposition}")).AsSpan(0, 16)),
        };
    }

    /// <summary>
    /// The same change without the identity (the default for every export): the pseudonym as user id, no name, the
    /// user's id and name replaced in reason texts and event ids, a peer group too small to be anonymous left out, and
    /// a fingerprint keyed with the pseudonym key (a plain hash over the stored JSON would let a reader test a guessed
    /// user id against it).
    /// </summary>
    public ExportFinding Pseudonymous(byte[] key, CrmSecurity.AuditAnalyzer.Review.PeerGroupSizes groups)
    {
        var pseudonym = string.IsNullOrEmpty(Pseudonym) ? CrmSecurity.AuditAnalyzer.Review.Pseudonyms.Of(key, UserId) : Pseudonym;
        return this with
        {
            UserId = pseudonym,
            UserName = null,
            Pseudonym = pseudonym,
            Identified = false,
            PeerGroup = groups.Shown(PeerGroup),
            Reasons = [.. Reasons.Select(r => r with { Text = groups.Redact(CrmSecurity.AuditAnalyzer.Review.PseudonymousView.Text(r.Text, UserId, UserName, pseudonym), PeerGroup) })],
            EventIds = [.. EventIds.Select(id => CrmSecurity.AuditAnalyzer.Review.PseudonymousView.EventId(key, id, UserId, UserName))],
            Fingerprint = Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(key, Encoding.UTF8.GetBytes("fingerprint\0" + Fingerprint)).AsSpan(0, 16)),
        };
    }

    private static JsonDocument? TryParse(string json)
    {
        try
        {
            return JsonDocument.Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static List<string> Strings(JsonElement json, string name) =>
        json.TryGetProperty(name, out var array) && array.ValueKind == JsonValueKind.Array
            ? array.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!).ToList()
            : [];

    private static List<ExportReason> ReadReasons(JsonElement json)
    {
        if (!json.TryGetProperty("reasons", out var reasons) || reasons.ValueKind != JsonValueKind.Array)
        {
            return [];
        }

        return reasons.EnumerateArray().Select(r => new ExportReason(
            Text(r, "code"),
            Text(r, "detector"),
            r.TryGetProperty("score", out var score) && score.ValueKind == JsonValueKind.Number ? score.GetDouble() : 0,
            Text(r, "text"),
            Number(r, "typical"),
            Number(r, "actual"))).ToList();

        static string Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

        static double? Number(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
    }
}

/// <summary>
/// A position in the findings feed, ordered by (updated_ticks, id). Opaque to callers: a versioned, base64url
/// token, so its layout can change without breaking a SIEM that stores it.
/// </summary>
internal readonly record struct FeedCursor(long UpdatedTicks, string FindingId)
{
    private const string Version = "1";

    public string Encode() => Base64UrlEncode($"{Version}:{UpdatedTicks}:{FindingId}");

    public static bool TryDecode(string? text, out FeedCursor cursor)
    {
        cursor = default;
        if (string.IsNullOrEmpty(text) || text.Length > 200)
        {
            return false;
        }

        string decoded;
        try
        {
            decoded = Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(text));
        }
        catch (FormatException)
        {
            return false;
        }

        var parts = decoded.Split(':', 3);
        if (parts.Length != 3 || parts[0] != Version || !long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ticks)
            || ticks > DateTimeOffset.MaxValue.UtcTicks || parts[2].Length is 0 or > 40)
        {
            return false;
        }

        cursor = new FeedCursor(ticks, parts[2]);
        return true;
    }

    private static string Base64UrlEncode(string text) => System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes(text));
}

/// <summary>Where review states come from (<see cref="LiveReviewStates"/>: the review workflow's table).</summary>
internal interface IFindingReviewStates
{
    Task<IReadOnlyDictionary<string, ReviewState>> GetAsync(IReadOnlyCollection<string> findingIds, CancellationToken cancellationToken);
}

/// <summary>
/// Reads finding changes after a cursor from <c>analyzer_live_findings</c>, read-only. Rows saved within the
/// settle time are held back: the scorer stamps <c>updated_ticks</c> before its transaction commits, so a row with
/// an earlier stamp can still appear after a later one; reading only settled rows keeps a cursor from passing it.
/// </summary>
internal static class FindingFeed
{
    public static async Task<List<ExportFinding>> ReadAsync(
        LiveDbContext db, IFindingReviewStates reviews, FeedCursor? after, int limit, DateTimeOffset settledBefore, CancellationToken cancellationToken)
    {
        var before = settledBefore.UtcTicks;
        var query = db.Findings.AsNoTracking().Where(f => f.UpdatedTicks < before);
        if (after is { } cursor)
        {
            var (ticks, id) = (cursor.UpdatedTicks, cursor.FindingId);
            query = query.Where(f => f.UpdatedTicks > ticks || (f.UpdatedTicks == ticks && f.Id.CompareTo(id) > 0));
        }

        var rows = await query.OrderBy(f => f.UpdatedTicks).ThenBy(f => f.Id).Take(limit).ToListAsync(cancellationToken);
        var states = rows.Count == 0
            ? new Dictionary<string, ReviewState>()
            : await reviews.GetAsync(rows.Select(r => r.Id).ToList(), cancellationToken);
        return rows.Select(r => ExportFinding.FromRow(r, states.GetValueOrDefault(r.Id))).ToList();
    }
}
