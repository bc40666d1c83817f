using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace CrmSecurity.Identity.Pages;

/// <summary>
/// The landing page after sign-in: a card for each area this person may use, decided by the authorization model the
/// areas themselves enforce (deny by default, OWASP ASVS 4.0.3 V4.1.3): administration when they hold read on one of the
/// admin system entities, findings review when they hold read on findings (the rule of <c>IReviewAccess</c>), their own
/// account always. A card is a way in, never a right: each page still checks for itself.
/// </summary>
[Authorize(AuthenticationSchemes = "Identity.Application")]
internal sealed class IndexModel(AuthorizationModel model) : PageModel
{
    /// <summary>The admin pages and the system entity whose read privilege shows each one.</summary>
    private static readonly (string Entity, string Path, string Name)[] AdminSections =
    [
        (SystemEntities.User, "/admin/users", "Users"),
        (SystemEntities.Role, "/admin/roles", "Security roles"),
        (SystemEntities.FieldProfile, "/admin/field-security", "Field security profiles"),
        (SystemEntities.AuditTrail, "/admin/audit", "Audit trail"),
    ];

    /// <summary>Entities whose read privilege makes someone an administrator of some part of the model.</summary>
    private static readonly string[] AdminEntities =
    [
        SystemEntities.User, SystemEntities.Team, SystemEntities.BusinessUnit, SystemEntities.Role,
        SystemEntities.FieldProfile, SystemEntities.Client, SystemEntities.AuditTrail,
    ];

    public string UserName { get; private set; } = "";

    /// <summary>The admin pages this person may read; empty when the admin card is not shown.</summary>
    public IReadOnlyList<(string Path, string Name)> Admin { get; private set; } = [];

    public bool MayAdminister { get; private set; }

    public bool MayReview { get; private set; }

    public IActionResult OnGet()
    {
        // A signed-in user the model does not know (or has disabled) gets only the account card.
        UserName = User.Identity?.Name ?? "";
        if (AdminGuard.For(model.Current, User, HttpContext.Connection.RemoteIpAddress?.ToString()) is { } guard)
        {
            UserName = guard.CallerInfo.UserName;
            MayAdminister = AdminEntities.Any(entity => guard.Require(entity, CrmAction.Read) is null);
            Admin = MayAdminister ? [.. AdminSections.Where(s => guard.Require(s.Entity, CrmAction.Read) is null).Select(s => (s.Path, s.Name))] : [];
            MayReview = guard.Require(SystemEntities.Finding, CrmAction.Read) is null;
        }

        return Page();
    }
}
