using System.Globalization;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>The queue's filters, already validated.</summary>
internal sealed record QueueFilter(
    IReadOnlyList<string> Statuses, IReadOnlyList<string> Severities, string? Detector, string? User, string? Assignee,
    DateTimeOffset? From, DateTimeOffset? To, int Page, int PageSize);

internal sealed record QueueItem(
    string Id, string User, string Detector, double Score, string Severity, DateTimeOffset WindowStart, DateTimeOffset WindowEnd,
    string Status, string? Disposition, string? Assignee, int Version, string? TopReason);

internal sealed record QueuePage(int Page, int PageSize, int Total, IReadOnlyList<QueueItem> Items);

internal sealed record ReviewNote(string Author, string Text, DateTimeOffset CreatedAt);

internal sealed record ReviewState(
    string Status, string? Disposition, string? DuplicateOf, string? Assignee, string? SuppressionId, string UpdatedBy, DateTimeOffset UpdatedAt,
    int Version, IReadOnlyList<string> Next);

internal sealed record HistoryItem(string Id, string Detector, double Score, string Severity, DateTimeOffset WindowStart, string Status);

/// <summary>One finding as a reviewer sees it: pseudonymous, with reasons, evidence, notes and the user's recent findings.</summary>
internal sealed record FindingDetail(
    string Id, string User, string? PeerGroup, string Detector, IReadOnlyList<string> Detectors, double Score, string Severity,
    DateTimeOffset WindowStart, DateTimeOffset WindowEnd, DateTimeOffset DetectedAt, bool Learning, IReadOnlyList<Reason> Reasons,
    ReviewState Review, IReadOnlyList<ReviewNote> Notes, IReadOnlyList<EvidenceEvent> Evidence, IReadOnlyList<HistoryItem> History);

internal sealed record UserRiskPage(string User, int Findings, double TopScore, IReadOnlyDictionary<string, int> ByDetector, IReadOnlyList<HistoryItem> Timeline);

/// <summary>Read side of the review workflow. User ids never leave it: findings are named by pseudonym.</summary>
internal static class ReviewQueries
{
    /// <summary>Sorted by score (highest first), then newest window.</summary>
    public static async Task<QueuePage> QueueAsync(LiveDbContext db, QueueFilter filter, PeerGroupSizes groups, CancellationToken cancellationToken)
    {
        var query = db.Findings.AsNoTracking().Join(db.Reviews.AsNoTracking(), f => f.Id, r => r.FindingId, (f, r) => new { f, r });
        var statuses = filter.Statuses.ToList();
        query = query.Where(x => statuses.Contains(x.r.Status));
        if (filter.Severities.Count > 0)
        {
            var severities = filter.Severities.ToList();
            query = query.Where(x => severities.Contains(x.f.Severity));
        }

        if (filter.Detector is { } detector)
        {
            query = query.Where(x => x.f.Detector == detector);
        }

        if (filter.User is { } user)
        {
            query = query.Where(x => x.f.Pseudonym == user);
        }

        if (filter.Assignee is { } assignee)
        {
            query = query.Where(x => x.r.Assignee == assignee);
        }

        if (filter.From is { } from)
        {
            var ticks = from.UtcTicks;
            query = query.Where(x => x.f.WindowEndTicks >= ticks);
        }

        if (filter.To is { } to)
        {
            var ticks = to.UtcTicks;
            query = query.Where(x => x.f.WindowStartTicks < ticks);
        }

        var total = await query.CountAsync(cancellationToken);
        var rows = await query.OrderByDescending(x => x.f.Score).ThenByDescending(x => x.f.WindowStartTicks).ThenBy(x => x.f.Id)
            .Skip((filter.Page - 1) * filter.PageSize).Take(filter.PageSize).ToListAsync(cancellationToken);
        var items = rows.Select(x => new QueueItem(
            x.f.Id, x.f.Pseudonym, x.f.Detector, x.f.Score, x.f.Severity, Time(x.f.WindowStartTicks), Time(x.f.WindowEndTicks),
            x.r.Status, x.r.Disposition, x.r.Assignee, x.r.Version, TopReason(x.f.Json) is { } top ? groups.Redact(top, x.f.PeerGroup) : null)).ToList();
        return new QueuePage(filter.Page, filter.PageSize, total, items);
    }

    /// <summary>The finding as a reviewer sees it before a reveal: a peer group too small to be anonymous is withheld, in the reasons too.</summary>
    public static async Task<FindingDetail?> DetailAsync(LiveDbContext db, string id, DateTimeOffset now, PeerGroupSizes groups, CancellationToken cancellationToken)
    {
        var f = await db.Findings.AsNoTracking().FirstOrDefaultAsync(x => x.Id == id, cancellationToken);
        var r = f is null ? null : await db.Reviews.AsNoTracking().FirstOrDefaultAsync(x => x.FindingId == id, cancellationToken);
        if (f is null || r is null)
        {
            return null;
        }

        // A row's columns win over its JSON; a row whose JSON cannot be read still shows, without reasons.
        var stored = FindingJson.ParseOrNull(f.Json);
        var reasons = stored?.Reasons.Select(r => r with { Text = groups.Redact(r.Text, f.PeerGroup) }).ToList() ?? [];
        var eventIds = stored?.EventIds ?? [];
        var notes = await db.Notes.AsNoTracking().Where(n => n.FindingId == id).OrderBy(n => n.Id)
            .Select(n => new ReviewNote(n.AuthorName, n.Text, new DateTimeOffset(n.CreatedTicks, TimeSpan.Zero))).ToListAsync(cancellationToken);
        var evidence = await Evidence.LoadAsync(db, f.UserId, f.WindowStartTicks, f.WindowEndTicks, eventIds, cancellationToken);
        var since = (now - TimeSpan.FromDays(30)).UtcTicks;
        var history = await HistoryAsync(db, f.UserId, since, 100, cancellationToken);
        return new FindingDetail(
            f.Id, f.Pseudonym, groups.Shown(f.PeerGroup), f.Detector,
            stored?.Detectors is { Count: > 0 } detectors ? detectors : [f.Detector],
            f.Score, f.Severity, Time(f.WindowStartTicks), Time(f.WindowEndTicks), Time(f.DetectedTicks), stored?.Learning ?? false,
            reasons,
            new ReviewState(r.Status, r.Disposition, r.DuplicateOf, r.Assignee, r.SuppressionId, r.UpdatedBy, Time(r.UpdatedTicks), r.Version, ReviewStateMachine.Next(r.Status)),
            notes, evidence, history);
    }

    /// <summary>A user's findings by pseudonym over the last <paramref name="days"/> days, newest first.</summary>
    public static async Task<UserRiskPage?> UserAsync(LiveDbContext db, string pseudonym, DateTimeOffset now, int days, CancellationToken cancellationToken)
    {
        var userId = await db.Findings.AsNoTracking().Where(f => f.Pseudonym == pseudonym).Select(f => f.UserId).FirstOrDefaultAsync(cancellationToken);
        if (userId is null)
        {
            return null;
        }

        var timeline = await HistoryAsync(db, userId, (now - TimeSpan.FromDays(days)).UtcTicks, 1000, cancellationToken);
        return new UserRiskPage(
            pseudonym, timeline.Count, timeline.Count == 0 ? 0 : timeline.Max(h => h.Score),
            timeline.GroupBy(h => h.Detector, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal), timeline);
    }

    private static async Task<List<HistoryItem>> HistoryAsync(LiveDbContext db, string userId, long sinceTicks, int limit, CancellationToken cancellationToken) =>
        (await db.Findings.AsNoTracking().Where(x => x.UserId == userId && x.WindowEndTicks >= sinceTicks)
            .Join(db.Reviews.AsNoTracking(), x => x.Id, y => y.FindingId, (x, y) => new { x.Id, x.Detector, x.Score, x.Severity, x.WindowStartTicks, y.Status })
            .OrderByDescending(x => x.WindowStartTicks).Take(limit).ToListAsync(cancellationToken))
        .Select(x => new HistoryItem(x.Id, x.Detector, x.Score, x.Severity, Time(x.WindowStartTicks), x.Status)).ToList();

    private static string? TopReason(string json) =>
        FindingJson.ParseOrNull(json)?.Reasons is [var top, ..] ? top.Text : null;

    public static DateTimeOffset Time(long ticks) => new(ticks, TimeSpan.Zero);

    public static string Format(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
}
