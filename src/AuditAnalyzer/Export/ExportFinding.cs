using System.Text;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>
/// The review state of a finding (status and disposition from the review workflow, through
/// <see cref="IFindingReviewStates"/>); null for a finding stored before the review tables knew it.
/// </summary>
internal sealed record ReviewState(string? Status, string? Disposition);

/// <summary>
/// A finding change as the exports see it: the <see cref="Findings.Finding"/> as stored, when it was saved, its
/// pseudonym and optionally its review state.
/// </summary>
internal sealed record ExportFinding
{
    public required Finding Finding { get; init; }

    /// <summary>The user's pseudonym (what the review queue shows).</summary>
    public string Pseudonym { get; init; } = "";

    /// <summary>Whether the finding's user id and name are the real identity (false: the pseudonym, no name).</summary>
    public bool Identified { get; init; } = true;

    /// <summary>When the scorer last saved this finding (each change moves it on).</summary>
    public required DateTimeOffset UpdatedAt { get; init; }

    public ReviewState? Review { get; init; }

    /// <summary>
    /// Fingerprint of what a receiver sees except the version time: equal for a re-save that changed nothing.
    /// SHA-256 of the stored finding JSON (which has no update time) and the review state, first 16 bytes in hex.
    /// </summary>
    public required string Fingerprint { get; init; }

    public string Id => Finding.Id;

    /// <summary>Position of this change in the feed.</summary>
    public FeedCursor Cursor => new(UpdatedAt.UtcTicks, Finding.Id);

    /// <summary>
    /// Reads a stored finding; the row's columns win over its JSON where both exist. A row whose JSON cannot be read
    /// still exports from its columns, with no reasons: one bad row must not stop a feed for good.
    /// </summary>
    public static ExportFinding FromRow(StoredFindingRow row, ReviewState? review = null)
    {
        var stored = FindingJson.ParseOrNull(row.Json);
        var finding = new Finding
        {
            Id = row.Id,
            UserId = row.UserId,
            UserName = row.UserName,
            PeerGroup = stored?.PeerGroup,
            Detector = row.Detector,
            Detectors = stored?.Detectors is { Count: > 0 } detectors ? detectors : [row.Detector],
            Score = row.Score,
            Severity = SeverityNames.Parse(row.Severity),
            WindowStart = new DateTimeOffset(row.WindowStartTicks, TimeSpan.Zero),
            WindowEnd = new DateTimeOffset(row.WindowEndTicks, TimeSpan.Zero),
            DetectedAt = new DateTimeOffset(row.DetectedTicks, TimeSpan.Zero),
            Reasons = stored?.Reasons ?? [],
            EventIds = stored?.EventIds ?? [],
            Learning = stored?.Learning ?? false,
        };
        return new ExportFinding
        {
            Finding = finding,
            Pseudonym = row.Pseudonym,
            UpdatedAt = new DateTimeOffset(row.UpdatedTicks, TimeSpan.Zero),
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
    public ExportFinding Pseudonymous(byte[] key, PeerGroupSizes groups)
    {
        var f = Finding;
        var pseudonym = string.IsNullOrEmpty(Pseudonym) ? Pseudonyms.Of(key, f.UserId) : Pseudonym;
        return this with
        {
            Finding = f with
            {
                UserId = pseudonym,
                UserName = null,
                PeerGroup = groups.Shown(f.PeerGroup),
                Reasons = [.. f.Reasons.Select(r => r with { Text = groups.Redact(PseudonymousView.Text(r.Text, f.UserId, f.UserName, pseudonym), f.PeerGroup) })],
                EventIds = [.. f.EventIds.Select(id => PseudonymousView.EventId(key, id, f.UserId, f.UserName))],
            },
            Pseudonym = pseudonym,
            Identified = false,
            Fingerprint = Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(key, Encoding.UTF8.GetBytes("fingerprint\0" + Fingerprint)).AsSpan(0, 16)),
        };
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
