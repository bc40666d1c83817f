using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Review.Pictures;
using Microsoft.AspNetCore.Mvc;

namespace CrmSecurity.AuditAnalyzer.Pages.Review;

/// <summary>One finding: reasons (typical vs actual), evidence timeline, notes, the user's 30-day history, and the review actions.</summary>
internal sealed class FindingModel(IReviewAccess access, ReviewActions actions, LiveDirectory directory, TimeProvider time) : ReviewPageModel(access)
{
    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    [BindProperty]
    public int? Version { get; set; }

    [BindProperty]
    public string? Status { get; set; }

    [BindProperty]
    public string? Disposition { get; set; }

    [BindProperty]
    public string? DuplicateOf { get; set; }

    [BindProperty]
    public string? Note { get; set; }

    [BindProperty]
    public string? Assignee { get; set; }

    [BindProperty]
    public string? RevealReason { get; set; }

    public FindingDetail? Finding { get; private set; }

    /// <summary>The finding's day as a timeline, and the user's daily volume and hour-of-week heat map.</summary>
    public UserPictures? Pictures { get; private set; }

    /// <summary>Set only in the response to a reveal; never stored or logged.</summary>
    public RevealedUser? Revealed { get; private set; }

    /// <summary>Whether the finding is about the signed-in reviewer (the review forms are not offered then).</summary>
    public bool AboutCaller { get; private set; }

    public Task<IActionResult> OnGetAsync(CancellationToken cancellationToken) => LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostAcknowledgeAsync(CancellationToken cancellationToken) =>
        await Result(await actions.ChangeStatusAsync(Caller, Id, new StatusChange(ReviewStatus.Acknowledged, null, null, null, Version), bulk: false, cancellationToken), "Acknowledged.", cancellationToken);

    public async Task<IActionResult> OnPostCloseAsync(CancellationToken cancellationToken) =>
        await Result(await actions.ChangeStatusAsync(Caller, Id, new StatusChange(Status ?? "", Blank(Disposition), Blank(DuplicateOf), Note, Version), bulk: false, cancellationToken),
            $"Moved to {Status}.", cancellationToken);

    public async Task<IActionResult> OnPostAssignAsync(CancellationToken cancellationToken) =>
        await Result(await actions.AssignAsync(Caller, Id, Blank(Assignee), Version, bulk: false, cancellationToken),
            Blank(Assignee) is { } who ? $"Assigned to {who}." : "Unassigned.", cancellationToken);

    public async Task<IActionResult> OnPostNoteAsync(CancellationToken cancellationToken) =>
        await Result(await actions.AddNoteAsync(Caller, Id, Note, cancellationToken), "Note added.", cancellationToken);

    public async Task<IActionResult> OnPostRevealAsync(CancellationToken cancellationToken)
    {
        var problems = new List<ReviewProblem>();
        var revealed = await actions.RevealAsync(Caller, Id, RevealReason, problems, cancellationToken);
        if (revealed is null)
        {
            return await RefusedAsync(problems[0], cancellationToken);
        }

        // Rendered in this response only (no redirect, nothing kept): the reveal was audited before it was shown.
        Revealed = revealed;
        Response.Headers.CacheControl = "no-store";
        return await LoadAsync(cancellationToken);
    }

    protected override async Task<IActionResult> LoadAsync(CancellationToken cancellationToken)
    {
        Finding = await ReviewQueries.DetailAsync(actions.Db, Id, time.GetUtcNow(), actions.PeerGroups, cancellationToken);
        if (Finding is null)
        {
            return NotFound();
        }

        AboutCaller = Caller is not null && await actions.IsAboutAsync(Id, Caller, cancellationToken);
        Pictures = await PictureQueries.ForFindingAsync(actions.Db, directory, actions.PeerGroups, Id, time.GetUtcNow(), cancellationToken);
        return Page();
    }

    private async Task<IActionResult> Result(ReviewProblem? problem, string message, CancellationToken cancellationToken) =>
        problem is null ? Done(message, "/Review/Finding", new { id = Id }) : await RefusedAsync(problem, cancellationToken);

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
