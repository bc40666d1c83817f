using CrmSecurity.AuditAnalyzer.Review;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.AuditAnalyzer.Pages.Review;

/// <summary>
/// The review pages: the signed-in user's cookie (scheme <see cref="CookieScheme"/>, set by the host's sign-in page,
/// never a bearer token), anti-forgery on every form (the Razor Pages default), and the same <see cref="IReviewAccess"/>
/// and <see cref="ReviewActions"/> as the review API, so a page can do nothing the API would refuse. Reading needs the
/// read right; a caller without it gets 403 before any finding is loaded.
/// </summary>
[Authorize(AuthenticationSchemes = CookieScheme)]
[RequestSizeLimit(CrmSecurity.AuditAnalyzer.Review.ReviewEndpoints.MaxBodyBytes)] // forms are small; refuse large bodies before reading (ASVS V13.1.3)
internal abstract class ReviewPageModel(IReviewAccess access) : PageModel
{
    public const string CookieScheme = "Identity.Application";

    protected ReviewCaller? Caller { get; private set; }

    public string? Problem { get; protected set; }

    /// <summary>Field name of the problem, for aria-describedby and the error summary.</summary>
    public string? ProblemField { get; protected set; }

    /// <summary>The person's own time zone: every time on the review pages is shown in it, with UTC on hover.</summary>
    public TimeZoneInfo Zone => CrmSecurity.Shared.LocalTime.Zone(Caller?.ZoneInfo);

    /// <summary>Whether the caller may change reviews (the action forms are shown only then).</summary>
    public bool MayReview => Caller?.CannotReview is null;

    public override async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        Caller = access.Identify(User, HttpContext.Connection.RemoteIpAddress?.ToString());
        if (Caller?.SecondFactorPage is { } secondFactor)
        {
            // The person is sent to turn on two-step verification, with the reason on that page (ASVS V4.3.1).
            context.Result = new RedirectResult(Url.Content("~" + secondFactor));
            return;
        }

        if (ReviewActions.MayRead(Caller) is { } refused)
        {
            context.Result = new ContentResult { StatusCode = StatusCodes.Status403Forbidden, Content = refused.Message, ContentType = "text/plain; charset=utf-8" };
            return;
        }

        await next();
    }

    /// <summary>Reloads what the page shows, for a refused change rendered in place.</summary>
    protected abstract Task<IActionResult> LoadAsync(CancellationToken cancellationToken);

    /// <summary>Shows a refused change on the page with its status code, instead of redirecting.</summary>
    protected async Task<IActionResult> RefusedAsync(ReviewProblem problem, CancellationToken cancellationToken)
    {
        var result = await LoadAsync(cancellationToken);
        Problem = problem.Message;
        ProblemField = problem.Field;
        Response.StatusCode = problem.Status;
        return result;
    }

    protected IActionResult Done(string message, string page, object? routeValues)
    {
        TempData["Message"] = message;
        return RedirectToPage(page, routeValues);
    }
}
