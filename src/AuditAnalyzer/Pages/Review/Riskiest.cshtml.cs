using System.Globalization;
using CrmSecurity.AuditAnalyzer.Review;
using Microsoft.AspNetCore.Mvc;

namespace CrmSecurity.AuditAnalyzer.Pages.Review;

/// <summary>The riskiest users: a roll-up per pseudonym, sortable and paged, each row linking to the user's page.</summary>
internal sealed class RiskiestModel(IReviewAccess access, ReviewActions actions, TimeProvider time) : ReviewPageModel(access)
{
    public RiskyUsersPage? Users { get; private set; }

    public static string SortLink(string sort) => "/review/users" + Microsoft.AspNetCore.Http.QueryString.Create("sort", sort).ToUriComponent();

    public string PageLink(int page) => "/review/users" + Microsoft.AspNetCore.Http.QueryString.Create(new Dictionary<string, string?>
    {
        ["sort"] = Users?.Sort ?? "risk",
        ["page"] = page.ToString(CultureInfo.InvariantCulture),
    }).ToUriComponent();

    public Task<IActionResult> OnGetAsync(CancellationToken cancellationToken) => LoadAsync(cancellationToken);

    protected override async Task<IActionResult> LoadAsync(CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var (sort, page, pageSize) = ReviewQueries.RiskyFilter(name => Request.Query[name].ToString(), actions.Options.MaxPageSize, errors);
        if (errors.Count > 0)
        {
            Problem = string.Join(" ", errors.Values.SelectMany(v => v));
            ProblemField = errors.Keys.First();
            Response.StatusCode = 400;
        }

        Users = await ReviewQueries.RiskiestAsync(actions.Db, sort, page, pageSize, time.GetUtcNow(), cancellationToken);
        return Page();
    }
}
