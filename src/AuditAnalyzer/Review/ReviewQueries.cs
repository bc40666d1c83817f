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

/// <summary>One user's risk roll-up, by pseudonym: what the riskiest-users view ranks.</summary>
/// <param name="User">The pseudonym.</param>
/// <param name="HighestOpenSeverity">The highest severity among the user's open findings (new, acknowledged, confirmed), or null.</param>
/// <param name="OpenFindings">How many of the user's findings are open.</param>
/// <param name="ScoreSum">The sum of the scores of the user's findings of the last 30 days, without dismissed or suppressed ones.</param>
/// <param name="LatestFindingId">The user's most recently detected finding.</param>
/// <param name="LatestDetector">The detector of that finding.</param>
/// <param name="LatestDetectedAt">When that finding was detected.</param>
internal sealed record RiskyUser(
    string User, string? HighestOpenSeverity, int OpenFindings, double ScoreSum, string LatestFindingId, string LatestDetector, DateTimeOffset LatestDetectedAt);

internal sealed record RiskyUsersPage(string Sort, int Page, int PageSize, int Total, IReadOnlyList<RiskyUser> Items);

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
        // The copy saved with the finding outlives the events (retention); a finding saved before copies were kept reads the events.
        var evidence = EvidenceCopy.ParseOrNull(f.Evidence)
            ?? await Evidence.LoadAsync(db, f.UserId, f.WindowStartTicks, f.WindowEndTicks, eventIds, cancellationToken);
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

    /// <summary>How the riskiest-users view may be sorted; <c>risk</c> (the default) is severity, then open findings, then the score sum.</summary>
    public static readonly string[] RiskySorts = ["risk", "open", "score", "latest"];

    /// <summary>Days the score sum of the riskiest-users view covers.</summary>
    public const int RiskDays = 30;

    private static readonly string[] Closed = [ReviewStatus.Dismissed, ReviewStatus.Resolved, ReviewStatus.Suppressed];
    private static readonly string[] NotCounted = [ReviewStatus.Dismissed, ReviewStatus.Suppressed];

    /// <summary>
    /// Users ranked by their roll-up over the last <see cref="RiskDays"/> days and their open findings, by pseudonym (the
    /// user id is used to group and never leaves). Open means what the queue calls open plus confirmed: in effect, as
    /// <c>LiveUserRisks</c> holds it.
    /// </summary>
    public static async Task<RiskyUsersPage> RiskiestAsync(LiveDbContext db, string sort, int page, int pageSize, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var since = (now - TimeSpan.FromDays(RiskDays)).UtcTicks;
        var rows = await db.Findings.AsNoTracking()
            .Join(db.Reviews.AsNoTracking(), f => f.Id, r => r.FindingId, (f, r) => new { f.Id, f.UserId, f.Pseudonym, f.Detector, f.Score, f.Severity, f.WindowEndTicks, f.DetectedTicks, r.Status })
            .Where(x => x.WindowEndTicks >= since || !Closed.Contains(x.Status))
            .ToListAsync(cancellationToken);
        var users = rows.GroupBy(x => x.UserId, StringComparer.Ordinal).Select(g =>
        {
            var open = g.Where(x => !Closed.Contains(x.Status)).ToList();
            var latest = g.MaxBy(x => (x.DetectedTicks, x.Id))!;
            return new RiskyUser(
                latest.Pseudonym,
                open.Count == 0 ? null : open.MaxBy(x => SeverityRank(x.Severity))!.Severity,
                open.Count,
                Math.Round(g.Where(x => x.WindowEndTicks >= since && !NotCounted.Contains(x.Status)).Sum(x => x.Score), 1),
                latest.Id, latest.Detector, Time(latest.DetectedTicks));
        }).Where(u => u.OpenFindings > 0 || u.ScoreSum > 0);
        var ordered = (sort switch
        {
            "open" => users.OrderByDescending(u => u.OpenFindings).ThenByDescending(u => SeverityRank(u.HighestOpenSeverity)).ThenByDescending(u => u.ScoreSum),
            "score" => users.OrderByDescending(u => u.ScoreSum).ThenByDescending(u => SeverityRank(u.HighestOpenSeverity)),
            "latest" => users.OrderByDescending(u => u.LatestDetectedAt),
            _ => users.OrderByDescending(u => SeverityRank(u.HighestOpenSeverity)).ThenByDescending(u => u.OpenFindings).ThenByDescending(u => u.ScoreSum),
        }).ThenByDescending(u => u.LatestDetectedAt).ThenBy(u => u.User, StringComparer.Ordinal).ToList();
        return new RiskyUsersPage(sort, page, pageSize, ordered.Count, [.. ordered.Skip((page - 1) * pageSize).Take(pageSize)]);
    }

    /// <summary>Reads <c>sort</c>, <c>page</c> and <c>page_size</c>, naming each bad one.</summary>
    public static (string Sort, int Page, int PageSize) RiskyFilter(Func<string, string?> get, int maxPageSize, Dictionary<string, string[]> errors)
    {
        var sort = string.IsNullOrWhiteSpace(get("sort")) ? "risk" : get("sort")!.Trim();
        if (!RiskySorts.Contains(sort, StringComparer.Ordinal))
        {
            errors["sort"] = [$"sort '{sort}' is not one of {string.Join(", ", RiskySorts)}."];
            sort = "risk";
        }

        return (sort, Whole(get("page"), "page", 1, int.MaxValue / maxPageSize, 1, errors), Whole(get("page_size"), "page_size", 1, maxPageSize, Math.Min(25, maxPageSize), errors));
    }

    private static int Whole(string? value, string name, int min, int max, int fallback, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return fallback;
        }

        if (int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max)
        {
            return n;
        }

        errors[name] = [string.Create(CultureInfo.InvariantCulture, $"{name} must be a whole number from {min} to {max}.")];
        return fallback;
    }

    private static int SeverityRank(string? severity) => severity switch { "critical" => 4, "high" => 3, "medium" => 2, "low" => 1, null => -1, _ => 0 };

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
