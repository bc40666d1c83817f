using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using Microsoft.AspNetCore.Mvc;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>"Who can access" for an entity and action, a field, or one record: each user with the path that grants it.</summary>
internal sealed class WhoCanAccessModel : AdminPageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Entity { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Action { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Field { get; set; }

    public WhoCanAccessView? Result { get; private set; }

    public IEnumerable<EntityInfo> Entities => Guard.Snapshot.Entities.Where(e => !e.IsSystem);

    public IActionResult OnGet()
    {
        if (Guard.Require(SystemEntities.User, CrmAction.Read) is { } denied)
        {
            return new ObjectResult(denied.Detail) { StatusCode = StatusCodes.Status403Forbidden };
        }

        if (string.IsNullOrEmpty(Entity))
        {
            return Page();
        }

        var (view, problem) = AdminEndpoints.WhoCanAccess(Guard, Entity, Action, Field, null, null, null);
        if (problem is not null)
        {
            return Refused(problem);
        }

        Result = view;
        return Page();
    }
}
