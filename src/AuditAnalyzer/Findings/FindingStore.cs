using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Findings;

/// <summary>
/// The one writer of <c>analyzer_live_findings</c>: scoring hands it findings and it decides what a finding becomes
/// when stored. A finding seen for the first time gets its review state (<c>new</c>, or <c>suppressed</c> when an
/// active suppression matches); a re-saved finding keeps the state reviewers gave it. Earlier dismissals as false
/// positive for the same user and detector lower the score (read from the database, so every instance applies the
/// same feedback). The row carries the pseudonym and the evidence's entities, which the queue filters by.
/// </summary>
internal sealed class FindingStore(ScoringPolicy policy, PseudonymKeys pseudonyms, IOptions<ReviewOptions> review)
{
    /// <summary>
    /// Call before the transaction that saves: the pseudonym key is created on first use, a write of its own that
    /// must not be rolled back (or, on PostgreSQL, abort) with the caller's transaction.
    /// </summary>
    public async Task PrepareAsync(LiveDbContext db, CancellationToken cancellationToken) => await pseudonyms.GetAsync(db, cancellationToken);

    /// <summary>Upserts the findings by id, in the caller's transaction. Of several with one id, the last is the newest.</summary>
    public async Task SaveAsync(LiveDbContext db, IReadOnlyList<Finding> findings, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // An open finding and its closed form share the id; the last one in the list is the newest.
        var latest = new Dictionary<string, Finding>(StringComparer.Ordinal);
        foreach (var finding in findings)
        {
            latest[finding.Id] = finding;
        }

        if (latest.Count == 0)
        {
            return;
        }

        var pseudonymKey = await pseudonyms.GetAsync(db, cancellationToken);
        var ids = latest.Keys.ToList();
        var users = latest.Values.Select(f => f.UserId).Distinct(StringComparer.Ordinal).ToList();
        var existing = await db.Findings.Where(f => ids.Contains(f.Id)).ToDictionaryAsync(f => f.Id, StringComparer.Ordinal, cancellationToken);
        var reviewed = (await db.Reviews.AsNoTracking().Where(r => ids.Contains(r.FindingId)).Select(r => r.FindingId).ToListAsync(cancellationToken))
            .ToHashSet(StringComparer.Ordinal);
        var falsePositives = await db.FalsePositives.AsNoTracking().Where(p => users.Contains(p.UserId))
            .Select(p => new { p.UserId, p.Detector, p.FindingId }).ToListAsync(cancellationToken);
        var nowTicks = now.UtcTicks;
        var settings = review.Value;
        var suppressions = (await db.Suppressions.AsNoTracking()
                .Where(x => x.RevokedTicks == null && (x.ExpiresTicks == null || x.ExpiresTicks > nowTicks))
                .OrderBy(x => x.CreatedTicks).ToListAsync(cancellationToken))
            .Select(x => x.ToMatcher(settings.MaxSuppressionLifetime)).ToList();
        foreach (var raw in latest.Values)
        {
            // A finding's own dismissal does not lower the finding itself as it grows.
            var earlier = falsePositives.Count(p => p.UserId == raw.UserId && p.Detector == raw.Detector && p.FindingId != raw.Id);
            var finding = FalsePositiveFeedback.Apply(raw, earlier, settings.FalsePositiveFactor, settings.FalsePositiveFloor, policy);
            if (!existing.TryGetValue(finding.Id, out var row))
            {
                row = new StoredFindingRow { Id = finding.Id, UserId = finding.UserId, Detector = finding.Detector, Severity = "", Json = "" };
                db.Findings.Add(row);
            }

            var evidence = await Evidence.LoadAsync(db, finding.UserId, finding.WindowStart.UtcTicks, finding.WindowEnd.UtcTicks, finding.EventIds, cancellationToken);
            row.UserName = finding.UserName;
            row.Detector = finding.Detector;
            row.Score = finding.Score;
            row.Severity = SeverityNames.Name(finding.Severity);
            row.WindowStartTicks = finding.WindowStart.UtcTicks;
            row.WindowEndTicks = finding.WindowEnd.UtcTicks;
            row.DetectedTicks = finding.DetectedAt.UtcTicks;
            row.Json = FindingJson.Serialize(finding);

            // The scorer names users missing from the directory "(not in directory)": that is no group to suppress by.
            row.PeerGroup = finding.PeerGroup is { } group && !group.StartsWith('(') ? group : null;
            row.Pseudonym = Pseudonyms.Of(pseudonymKey, finding.UserId);
            row.Entities = Evidence.EntityList(evidence);
            // Kept with the finding: the events behind it are deleted after the retention period, the finding is not.
            row.Evidence = EvidenceCopy.Serialize(evidence);

            // The update time is the finding's version in the export feed (ordered by it, held back while younger than
            // the settle time). An open finding is saved as it stands each time its partition scores; a save that
            // changed nothing is no new version, or a SIEM would get it again and a busy partition never settle.
            var entry = db.Entry(row);
            entry.DetectChanges();
            if (entry.State == EntityState.Added || entry.Properties.Any(p => p.IsModified))
            {
                row.UpdatedTicks = nowTicks;
            }

            if (!reviewed.Contains(finding.Id))
            {
                var facts = new FindingFacts(finding.UserId, row.PeerGroup, finding.Detector, Evidence.Entities(row.Entities));
                var match = SuppressionMatcher.FirstMatch(suppressions, facts, nowTicks);
                db.Reviews.Add(new FindingReviewRow
                {
                    FindingId = finding.Id,
                    Status = match is null ? ReviewStatus.New : ReviewStatus.Suppressed,
                    SuppressionId = match?.Id,
                    UpdatedBy = "scorer",
                    UpdatedTicks = nowTicks,
                });
                reviewed.Add(finding.Id);
            }
        }

        await db.SaveChangesAsync(cancellationToken);
        db.ChangeTracker.Clear();
    }
}
