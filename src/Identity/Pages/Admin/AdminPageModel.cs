using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Contracts;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>
/// The admin pages: the signed-in user's cookie (never a bearer token), anti-forgery on every form (Razor Pages
/// default), and the same <see cref="AdminGuard"/> and <see cref="AdminOperations"/> as the admin API, so a page can do
/// nothing the API would refuse. A signed-in user who is not an enabled user of the model gets 403.
/// </summary>
[Authorize(AuthenticationSchemes = "Identity.Application")]
internal abstract class AdminPageModel : PageModel
{
    protected AdminGuard Guard { get; private set; } = null!;

    public string? Problem { get; protected set; }

    /// <summary>Field name of the problem, for aria-describedby and the error summary.</summary>
    public string? ProblemField { get; protected set; }

    /// <summary>What is wrong with <see cref="ProblemField"/>, for the message beside that control.</summary>
    public string? ProblemFieldMessage { get; protected set; }

    public override async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        var model = HttpContext.RequestServices.GetRequiredService<AuthorizationModel>();
        if (AdminGuard.For(model.Current, User, HttpContext.Connection.RemoteIpAddress?.ToString()) is not { } guard)
        {
            context.Result = new StatusCodeResult(StatusCodes.Status403Forbidden);
            return;
        }

        // Admin pages need a sign-in with two-step verification where it is required (ASVS V4.3.1): the person is sent
        // to turn it on, with the reason on the page.
        if (!HttpContext.RequestServices.GetRequiredService<AdminSecondFactor>().Satisfied(User))
        {
            context.Result = new RedirectResult(Url.Content("~" + CrmActor.SecondFactorPage("admin")));
            return;
        }

        Guard = guard;
        await next();
    }

    /// <summary>Shows a refused change on the page (status code kept) instead of redirecting.</summary>
    protected IActionResult Refused(AdminProblem problem)
    {
        Problem = problem.Detail;
        ProblemField = problem.Errors?.Keys.FirstOrDefault();
        ProblemFieldMessage = ProblemField is null ? null : problem.Errors![ProblemField].FirstOrDefault();
        Response.StatusCode = problem.Status;
        return Page();
    }

    protected IActionResult Done(string message, string page, object? routeValues)
    {
        TempData["Message"] = message;
        return RedirectToPage(page, routeValues);
    }

    /// <summary>After a change, read the snapshot the change produced.</summary>
    protected void Refresh()
    {
        var model = HttpContext.RequestServices.GetRequiredService<AuthorizationModel>();
        Guard = AdminGuard.For(model.Current, User, HttpContext.Connection.RemoteIpAddress?.ToString()) ?? Guard;
    }
}
