using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>The review workflow's status and disposition of each exported finding, read from the live tables.</summary>
internal sealed class LiveReviewStates(LiveDbContext db) : IFindingReviewStates
{
    public async Task<IReadOnlyDictionary<string, ReviewState>> GetAsync(IReadOnlyCollection<string> findingIds, CancellationToken cancellationToken)
    {
        if (findingIds.Count == 0)
        {
            return new Dictionary<string, ReviewState>();
        }

        var ids = findingIds.ToList();
        return await db.Reviews.AsNoTracking().Where(r => ids.Contains(r.FindingId))
            .ToDictionaryAsync(r => r.FindingId, r => new ReviewState(r.Status, r.Disposition), StringComparer.Ordinal, cancellationToken);
    }
}
