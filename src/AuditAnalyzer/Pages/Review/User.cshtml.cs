using CrmSecurity.AuditAnalyzer.Review;
using Microsoft.AspNetCore.Mvc;

namespace CrmSecurity.AuditAnalyzer.Pages.Review;

/// <summary>A user's risk by pseudonym: findings over the last 90 days and how they split by detector.</summary>
internal sealed class UserModel(IReviewAccess access, ReviewActions actions, TimeProvider time) : ReviewPageModel(access)
{
    public const int Days = 90;

    [BindProperty(SupportsGet = true)]
    public string Pseudonym { get; set; } = "";

    public UserRiskPage? Risk { get; private set; }

    public Task<IActionResult> OnGetAsync(CancellationToken cancellationToken) => LoadAsync(cancellationToken);

    protected override async Task<IActionResult> LoadAsync(CancellationToken cancellationToken)
    {
        Risk = Pseudonyms.LooksLikeOne(Pseudonym) ? await ReviewQueries.UserAsync(actions.Db, Pseudonym, time.GetUtcNow(), Days, cancellationToken) : null;
        return Risk is null ? NotFound() : Page();
    }
}
