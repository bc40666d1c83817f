using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>
/// The business units as a tree (Dynamics 365's hierarchy): create a unit under a parent picked from the tree, rename,
/// move and delete one after a confirmation step. Every change goes through <see cref="AdminOperations"/> like the API,
/// so the rules (no cycles, the root stays, only empty units are deleted, only inside the admin's reach) are the same.
/// </summary>
internal sealed class BusinessUnitsModel(IdentityStore store, AdminOperations operations) : AdminPageModel
{
    public IReadOnlyList<BusinessUnitNode> Tree { get; private set; } = [];

    /// <summary>The unit being edited (<c>?unit=</c>), or null.</summary>
    public BusinessUnitNode? Selected { get; private set; }

    [BindProperty(SupportsGet = true, Name = "unit")]
    public string? UnitId { get; set; }

    /// <summary>Set by the "Delete…" link: the page asks before anything is deleted.</summary>
    [BindProperty(SupportsGet = true, Name = "delete")]
    public bool ConfirmDelete { get; set; }

    [BindProperty]
    public string? NewId { get; set; }

    [BindProperty]
    public string? Name { get; set; }

    [BindProperty]
    public string? Parent { get; set; }

    [BindProperty]
    public int? Version { get; set; }

    /// <summary>Which form the problem belongs to (create, rename, move, delete), so its control is the one marked invalid.</summary>
    public string? ProblemForm { get; private set; }

    /// <summary>Units the admin may create a unit under.</summary>
    public IEnumerable<BusinessUnitNode> CreateParents => Tree.Where(n => Guard.Covers(SystemEntities.BusinessUnit, CrmAction.Create, n.View.Id));

    /// <summary>Units the selected one may move under: covered for update, and neither the unit itself nor below it (the tree stays a tree).</summary>
    public IEnumerable<BusinessUnitNode> MoveParents
    {
        get
        {
            if (Selected is null)
            {
                return [];
            }

            var snapshot = Guard.Snapshot;
            var unit = snapshot.BusinessUnits[snapshot.BusinessUnitIndex(Selected.View.Id)];
            return Tree.Where(n => !unit.Contains(snapshot.BusinessUnits[snapshot.BusinessUnitIndex(n.View.Id)]) && Guard.Covers(SystemEntities.BusinessUnit, CrmAction.Update, n.View.Id));
        }
    }

    public bool CanUpdate(string id) => Guard.Covers(SystemEntities.BusinessUnit, CrmAction.Update, id);

    public bool CanDelete(string id) => Guard.Covers(SystemEntities.BusinessUnit, CrmAction.Delete, id);

    /// <summary>The units directly below <paramref name="id"/> in the tree as shown.</summary>
    public IEnumerable<BusinessUnitNode> ChildrenOf(string? id) => Tree.Where(n => id is null ? IsTop(n) : n.View.Parent == id);

    private bool IsTop(BusinessUnitNode node) => node.View.Parent is null || Tree.All(n => n.View.Id != node.View.Parent);

    /// <summary>A unit's name indented by its level, so the parent pickers show the tree.</summary>
    public static string PickerLabel(BusinessUnitNode node) => new string('\u00A0', node.Level * 3) + node.View.Name;

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (Guard.Require(SystemEntities.BusinessUnit, CrmAction.Read) is { } denied)
        {
            return new ObjectResult(denied.Detail) { StatusCode = StatusCodes.Status403Forbidden };
        }

        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken cancellationToken)
    {
        var problem = await operations.CreateBusinessUnitAsync(Guard, new BusinessUnitBody(NewId?.Trim(), Name, Parent, null), cancellationToken);
        return problem is null
            ? Done($"Created the business unit {Name!.Trim()}.", "/Admin/BusinessUnits", new { unit = NewId!.Trim() })
            : await RefusedAsync("create", problem, cancellationToken);
    }

    public async Task<IActionResult> OnPostRenameAsync(CancellationToken cancellationToken)
    {
        var problem = await operations.UpdateBusinessUnitAsync(Guard, UnitId ?? "", new BusinessUnitBody(null, Name ?? "", null, Version), cancellationToken);
        return problem is null
            ? Done($"Renamed the business unit to {Name!.Trim()}.", "/Admin/BusinessUnits", new { unit = UnitId })
            : await RefusedAsync("rename", problem, cancellationToken);
    }

    public async Task<IActionResult> OnPostMoveAsync(CancellationToken cancellationToken)
    {
        var problem = await operations.UpdateBusinessUnitAsync(Guard, UnitId ?? "", new BusinessUnitBody(null, null, Parent ?? "", Version), cancellationToken);
        return problem is null
            ? Done($"Moved the business unit {Guard.BusinessUnitName(UnitId!)} under {Guard.BusinessUnitName(Parent!)}.", "/Admin/BusinessUnits", new { unit = UnitId })
            : await RefusedAsync("move", problem, cancellationToken);
    }

    public async Task<IActionResult> OnPostDeleteAsync(CancellationToken cancellationToken)
    {
        var name = Guard.BusinessUnitName(UnitId ?? "");
        var problem = await operations.DeleteBusinessUnitAsync(Guard, UnitId ?? "", Version, cancellationToken);
        return problem is null
            ? Done($"Deleted the business unit {name}.", "/Admin/BusinessUnits", null)
            : await RefusedAsync("delete", problem, cancellationToken);
    }

    private async Task<IActionResult> RefusedAsync(string form, Authorization.Store.AdminProblem problem, CancellationToken cancellationToken)
    {
        ProblemForm = form;
        ConfirmDelete = false;
        await LoadAsync(cancellationToken);
        return Refused(problem);
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Refresh();
        var versions = await store.BusinessUnits.AsNoTracking().ToDictionaryAsync(b => b.Id, b => b.Version, cancellationToken);
        Tree = AdminOperations.BusinessUnitTree(Guard, versions);
        Selected = UnitId is null ? null : Tree.FirstOrDefault(n => n.View.Id == UnitId);
    }
}
