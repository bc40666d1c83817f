using CrmSecurity.AuditAnalyzer.Review;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Pages.Review;

/// <summary>Suppressions: the list (active and ended), a form to create one, and revoke buttons.</summary>
internal sealed class SuppressionsModel(IReviewAccess access, ReviewActions actions, TimeProvider time) : ReviewPageModel(access)
{
    public sealed record Row(SuppressionRow Suppression, string ScopeValue, bool Active);

    public IReadOnlyList<Row> Suppressions { get; private set; } = [];

    [BindProperty]
    public string? ScopeKind { get; set; }

    [BindProperty]
    public string? ScopeValue { get; set; }

    [BindProperty]
    public string? Reason { get; set; }

    [BindProperty]
    public DateTime? ExpiresOn { get; set; }

    [BindProperty]
    public string? Owner { get; set; }

    [BindProperty]
    public bool ApplyToExisting { get; set; }

    [BindProperty]
    public string? RevokeId { get; set; }

    public Task<IActionResult> OnGetAsync(CancellationToken cancellationToken) => LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken cancellationToken)
    {
        // A date picked on the page ends the suppression at the end of that day (UTC).
        DateTimeOffset? expires = ExpiresOn is { } day ? new DateTimeOffset(DateTime.SpecifyKind(day.Date.AddDays(1), DateTimeKind.Utc)) : null;
        var request = new SuppressionRequest(ScopeKind ?? "", ScopeValue ?? "", Reason ?? "", expires, string.IsNullOrWhiteSpace(Owner) ? null : Owner.Trim(), ApplyToExisting);
        var (created, applied, problem) = await actions.CreateSuppressionAsync(Caller, request, cancellationToken);
        return problem is null
            ? Done($"Suppression {created!.Id} created; it closed {applied} open finding(s).", "/Review/Suppressions", null)
            : await RefusedAsync(problem.Field == "expires_at" ? problem with { Field = "expires-on" } : problem, cancellationToken);
    }

    public async Task<IActionResult> OnPostRevokeAsync(CancellationToken cancellationToken)
    {
        var problem = await actions.RevokeSuppressionAsync(Caller, RevokeId ?? "", cancellationToken);
        return problem is null ? Done($"Suppression {RevokeId} revoked.", "/Review/Suppressions", null) : await RefusedAsync(problem, cancellationToken);
    }

    protected override async Task<IActionResult> LoadAsync(CancellationToken cancellationToken)
    {
        var key = await actions.PseudonymKeyAsync(cancellationToken);
        var now = time.GetUtcNow().UtcTicks;
        var rows = await actions.Db.Suppressions.AsNoTracking().OrderByDescending(s => s.CreatedTicks).Take(500).ToListAsync(cancellationToken);
        Suppressions = [.. rows.Select(s => new Row(s, s.ScopeKind == SuppressionScope.User ? Pseudonyms.Of(key, s.ScopeValue) : s.ScopeValue, SuppressionMatcher.IsActive(s.ToMatcher(actions.Options.MaxSuppressionLifetime), now)))];
        return Page();
    }
}
