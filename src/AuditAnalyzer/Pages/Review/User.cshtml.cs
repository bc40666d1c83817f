using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Review.Pictures;
using Microsoft.AspNetCore.Mvc;

namespace CrmSecurity.AuditAnalyzer.Pages.Review;

/// <summary>A user's risk by pseudonym: findings over the last 90 days and how they split by detector.</summary>
internal sealed class UserModel(IReviewAccess access, ReviewActions actions, LiveDirectory directory, TimeProvider time) : ReviewPageModel(access)
{
    public const int Days = 90;

    [BindProperty(SupportsGet = true)]
    public string Pseudonym { get; set; } = "";

    public UserRiskPage? Risk { get; private set; }

    /// <summary>Daily volume against the user's own range and peers, and the hour-of-week heat map.</summary>
    public UserPictures? Pictures { get; private set; }

    public Task<IActionResult> OnGetAsync(CancellationToken cancellationToken) => LoadAsync(cancellationToken);

    protected override async Task<IActionResult> LoadAsync(CancellationToken cancellationToken)
    {
        Risk = Pseudonyms.LooksLikeOne(Pseudonym) ? await ReviewQueries.UserAsync(actions.Db, Pseudonym, time.GetUtcNow(), Days, cancellationToken) : null;
        if (Risk is null)
        {
            return NotFound();
        }

        Pictures = await PictureQueries.ForUserAsync(actions.Db, directory, actions.PeerGroups, Pseudonym, time.GetUtcNow(), cancellationToken);
        return Page();
    }
}
