using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Review;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>
/// A user's riskiest finding that is still in effect: severity medium or above, not dismissed, resolved or suppressed,
/// detected within the last 30 days.
/// </summary>
/// <param name="FindingId">The finding's id, as the review queue shows it.</param>
/// <param name="Severity"><c>medium</c>, <c>high</c> or <c>critical</c>.</param>
/// <param name="Detector">The detector that raised it (<c>bulk_export</c>, ...).</param>
/// <param name="TopReason">Its strongest reason, in words.</param>
/// <param name="DetectedAt">When it was detected.</param>
public sealed record UserRiskFinding(string FindingId, string Severity, string Detector, string TopReason, DateTimeOffset DetectedAt);

/// <summary>
/// The riskiest open finding per user, as of the last refresh (every poll interval, a second by default): what decisions
/// consult without touching the database. A finding an auditor dismisses or resolves drops out on the next refresh, and
/// every change of what is in effect for a user is written to the audit trail (<c>risk.in_effect</c>, <c>risk.lifted</c>).
/// </summary>
public sealed class LiveUserRisks
{
    private volatile FrozenDictionary<string, UserRiskFinding> _current = FrozenDictionary<string, UserRiskFinding>.Empty;

    /// <summary>True once the first refresh has read the findings (before it, nothing is known and nothing is in effect).</summary>
    public bool Loaded { get; private set; }

    /// <summary>The user's riskiest finding in effect, or null.</summary>
    public UserRiskFinding? Find(string userId) => _current.GetValueOrDefault(userId);

    internal IReadOnlyDictionary<string, UserRiskFinding> Current => _current;

    internal void Replace(FrozenDictionary<string, UserRiskFinding> next)
    {
        _current = next;
        Loaded = true;
    }
}

/// <summary>Refreshes <see cref="LiveUserRisks"/> from the findings and review tables, and audits what changed.</summary>
internal sealed partial class LiveUserRisksRefresher(
    LiveUserRisks risks, IServiceScopeFactory scopes, IOptions<LiveOptions> options, TimeProvider time, ILogger<LiveUserRisksRefresher> logger) : BackgroundService
{
    /// <summary>How long a finding nobody reviewed stays in effect.</summary>
    internal static readonly TimeSpan InEffectFor = TimeSpan.FromDays(30);

    private static readonly string[] Ended = [ReviewStatus.Dismissed, ReviewStatus.Resolved, ReviewStatus.Suppressed];

    private static readonly ReviewCaller Analyzer = new("audit-analyzer", "audit analyzer (risk effects)", null, null, null, null);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PollInterval, time);
        do
        {
            try
            {
                await RefreshAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogRefreshFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    internal async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        var since = (time.GetUtcNow() - InEffectFor).UtcTicks;
        string[] severities = ["medium", "high", "critical"];
        var rows = await (from f in db.Findings.AsNoTracking()
                          join r in db.Reviews.AsNoTracking() on f.Id equals r.FindingId
                          where severities.Contains(f.Severity) && !Ended.Contains(r.Status) && f.DetectedTicks >= since
                          select new { f.Id, f.UserId, f.Severity, f.Detector, f.DetectedTicks, f.Json })
            .ToListAsync(cancellationToken);
        var next = new Dictionary<string, UserRiskFinding>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            var candidate = new UserRiskFinding(row.Id, row.Severity, row.Detector, TopReason(row.Json), new DateTimeOffset(row.DetectedTicks, TimeSpan.Zero));
            if (!next.TryGetValue(row.UserId, out var held) || Rank(candidate).CompareTo(Rank(held)) > 0)
            {
                next[row.UserId] = candidate;
            }
        }

        var previous = risks.Current;
        var frozen = next.ToFrozenDictionary(StringComparer.Ordinal);
        if (!risks.Loaded)
        {
            risks.Replace(frozen);
            return; // what was in effect before a restart was audited when it began
        }

        var entries = new List<ReviewAuditEntry>();
        foreach (var (user, now) in next)
        {
            if (!previous.TryGetValue(user, out var before) || before != now)
            {
                entries.Add(new ReviewAuditEntry("risk.in_effect", "user", user, user, before is null ? null : Describe(before), Describe(now)));
            }
        }

        foreach (var (user, before) in previous)
        {
            if (!next.ContainsKey(user))
            {
                entries.Add(new ReviewAuditEntry("risk.lifted", "user", user, user, Describe(before), null));
            }
        }

        try
        {
            // The trail first: when a decision changes, its reason is already on record.
            if (entries.Count > 0 && scope.ServiceProvider.GetService<IReviewAuditTrail>() is { } trail)
            {
                await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
                await trail.AppendAsync(Analyzer, entries, transaction.GetDbTransaction(), cancellationToken);
                await transaction.CommitAsync(cancellationToken);
            }
        }
        finally
        {
            // A trail that cannot be written must not hold back a lifted restriction (or keep one off): decisions follow the findings.
            risks.Replace(frozen);
        }
    }

    /// <summary>Higher severity first, then the most recent.</summary>
    private static (int, long) Rank(UserRiskFinding f) => (f.Severity switch { "critical" => 3, "high" => 2, _ => 1 }, f.DetectedAt.UtcTicks);

    private static string Describe(UserRiskFinding f) => JsonSerializer.Serialize(new Dictionary<string, string>
    {
        ["finding"] = f.FindingId,
        ["severity"] = f.Severity,
        ["detector"] = f.Detector,
        ["detected_at"] = f.DetectedAt.ToString("O", CultureInfo.InvariantCulture),
    });

    private static string TopReason(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.TryGetProperty("reasons", out var reasons) && reasons.ValueKind == JsonValueKind.Array && reasons.GetArrayLength() > 0
                && reasons[0].TryGetProperty("text", out var text) ? text.GetString() ?? "" : "";
        }
        catch (JsonException)
        {
            return "";
        }
    }

    [LoggerMessage(EventId = 6130, Level = LogLevel.Warning, Message = "Could not read the open findings for risk-based access; the last state stays")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);
}
