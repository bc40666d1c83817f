using CrmSecurity.AuditAnalyzer.Review;
using Microsoft.AspNetCore.Mvc;

namespace CrmSecurity.AuditAnalyzer.Pages.Review;

/// <summary>The review queue: filters, findings by score with pseudonyms, and bulk acknowledge / assign.</summary>
internal sealed class IndexModel(IReviewAccess access, ReviewActions actions) : ReviewPageModel(access)
{
    public QueuePage? Queue { get; private set; }

    public QueueFilter? Filter { get; private set; }

    public Dictionary<string, string[]> Errors { get; } = new(StringComparer.Ordinal);

    [BindProperty]
    public List<string> Selected { get; set; } = [];

    [BindProperty]
    public string? BulkAction { get; set; }

    [BindProperty]
    public string? Assignee { get; set; }

    public string Query(string name) => Request.Query[name].ToString();

    public string PageLink(int page)
    {
        var query = Request.Query.Where(q => q.Key != "page").ToDictionary(q => q.Key, q => q.Value.ToString());
        query["page"] = page.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return "/review" + Microsoft.AspNetCore.Http.QueryString.Create(query!).ToUriComponent();
    }

    public Task<IActionResult> OnGetAsync(CancellationToken cancellationToken) => LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostBulkAsync(CancellationToken cancellationToken)
    {
        if (Selected.Count == 0)
        {
            return await RefusedAsync(ReviewProblem.Invalid("selected", "Select at least one finding."), cancellationToken);
        }

        if (BulkAction is not ("acknowledge" or "assign"))
        {
            return await RefusedAsync(ReviewProblem.Invalid("bulk-action", "Choose acknowledge or assign."), cancellationToken);
        }

        if (ReviewActions.MayReview(Caller) is { } refused)
        {
            return await RefusedAsync(refused, cancellationToken);
        }

        var done = 0;
        var failed = new List<string>();
        foreach (var id in Selected.Distinct(StringComparer.Ordinal).Take(actions.Options.MaxBulk))
        {
            var problem = BulkAction == "assign"
                ? await actions.AssignAsync(Caller, id, string.IsNullOrWhiteSpace(Assignee) ? Caller!.Id : Assignee.Trim(), null, bulk: true, cancellationToken)
                : await actions.ChangeStatusAsync(Caller, id, new StatusChange(ReviewStatus.Acknowledged, null, null, null, null), bulk: true, cancellationToken);
            if (problem is null)
            {
                done++;
            }
            else
            {
                // One refused item (a finding about the caller, a conflict) does not stop the others.
                failed.Add($"{id}: {problem.Message}");
            }
        }

        var message = failed.Count == 0 ? $"{BulkAction}: {done} finding(s) done." : $"{BulkAction}: {done} done, {failed.Count} not: {string.Join(" ", failed)}";
        return Done(message, "/Review/Index", null);
    }

    protected override async Task<IActionResult> LoadAsync(CancellationToken cancellationToken)
    {
        Filter = QueueFilters.Parse(name => Request.Query[name].ToString(), actions.Options.MaxPageSize, Errors);
        if (Errors.Count > 0)
        {
            Problem = string.Join(" ", Errors.Values.SelectMany(v => v));
            ProblemField = Errors.Keys.First();
            Response.StatusCode = 400;
            return Page();
        }

        Queue = await ReviewQueries.QueueAsync(actions.Db, Filter, actions.PeerGroups, cancellationToken);
        return Page();
    }
}
