using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>The role privilege grid, like Dynamics 365's: one row per entity, one column per action, a depth per cell.</summary>
internal sealed class RolesModel(IdentityStore store, AdminOperations operations) : AdminPageModel
{
    public IReadOnlyList<RoleInfo> Roles { get; private set; } = [];

    public RoleInfo? Role { get; private set; }

    public IReadOnlyList<EntityInfo> Entities { get; private set; } = [];

    public bool CanEdit { get; private set; }

    [BindProperty(SupportsGet = true, Name = "role")]
    public string? RoleId { get; set; }

    [BindProperty]
    public int Version { get; set; }

    [BindProperty]
    public Dictionary<string, string> Cells { get; set; } = [];

    /// <summary>The row or column to set at once: <c>row:ENTITY</c> or <c>column:ACTION</c>.</summary>
    [BindProperty]
    public string? Line { get; set; }

    [BindProperty]
    public string? LineDepth { get; set; }

    [BindProperty]
    public string? CloneId { get; set; }

    [BindProperty]
    public string? CloneName { get; set; }

    public bool CanCreate { get; private set; }

    /// <summary>Which form a refusal belongs to (grid, line, clone), so its controls are the ones marked invalid.</summary>
    public string? ProblemForm { get; private set; }

    public Depth DepthOf(EntityInfo entity, CrmAction action) =>
        Role is null ? Depth.None : (Depth)Role.Depths[(entity.Index * CrmNames.ActionCount) + (int)action];

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (Guard.Require(SystemEntities.Role, CrmAction.Read) is { } denied)
        {
            return Forbidden(denied);
        }

        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        if (RoleId is null)
        {
            return RedirectToPage();
        }

        // The whole grid is one change: every cell is validated first, then applied in one transaction, or none is.
        var privileges = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var (key, depth) in Cells)
        {
            var parts = key.Split(':', 2);
            if (parts.Length != 2)
            {
                continue;
            }

            if (!privileges.TryGetValue(parts[0], out var row))
            {
                privileges[parts[0]] = row = new(StringComparer.Ordinal);
            }

            row[parts[1]] = depth;
        }

        var problem = await operations.UpdateRoleAsync(Guard, RoleId, new RoleBody(null, null, null, privileges, Version), cancellationToken);
        if (problem is not null)
        {
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        return Done($"Saved the privileges of role '{Guard.Snapshot.Roles[Guard.Snapshot.RoleIndex(RoleId)].Name}'.", "/Admin/Roles", new { role = RoleId });
    }

    /// <summary>A whole row or column of the grid to one depth: one audited change, checked against the version shown.</summary>
    public async Task<IActionResult> OnPostLineAsync(CancellationToken cancellationToken)
    {
        var parts = (Line ?? "").Split(':', 2);
        string? entity = parts is ["row", var e] ? e : null;
        string? action = parts is ["column", var a] ? a : entity is null ? "" : null;
        var problem = await operations.SetPrivilegeLineAsync(Guard, RoleId ?? "", entity, action, LineDepth, Version, cancellationToken);
        if (problem is not null)
        {
            ProblemForm = "line";
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        var what = entity is not null ? $"the row {entity}" : $"the column {action}";
        return Done($"Set {what} of role '{Guard.Snapshot.Roles[Guard.Snapshot.RoleIndex(RoleId!)].Name}' to {LineDepth}.", "/Admin/Roles", new { role = RoleId });
    }

    public async Task<IActionResult> OnPostCloneAsync(CancellationToken cancellationToken)
    {
        var problem = await operations.CloneRoleAsync(Guard, RoleId ?? "", new RoleBody(CloneId?.Trim(), CloneName, null, null, null), cancellationToken);
        if (problem is not null)
        {
            ProblemForm = "clone";
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        var source = Guard.Snapshot.Roles[Guard.Snapshot.RoleIndex(RoleId!)].Name;
        return Done($"Created the role '{CloneName!.Trim()}' as a copy of '{source}'.", "/Admin/Roles", new { role = CloneId!.Trim() });
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Refresh();
        var snapshot = Guard.Snapshot;
        Roles = [.. snapshot.Roles.OrderBy(r => r.Name, StringComparer.CurrentCulture)];
        Entities = [.. snapshot.Entities.OrderBy(e => e.IsSystem).ThenBy(e => e.Name, StringComparer.Ordinal)];
        CanEdit = Guard.Require(SystemEntities.Role, CrmAction.Update) is null;
        CanCreate = Guard.Require(SystemEntities.Role, CrmAction.Create) is null;
        if (RoleId is not null && snapshot.RoleIndex(RoleId) is var index and >= 0)
        {
            Role = snapshot.Roles[index];
            Version = await store.CrmRoles.AsNoTracking().Where(r => r.Id == RoleId).Select(r => r.Version).SingleAsync(cancellationToken);
        }
    }

    private static ObjectResult Forbidden(Authorization.Store.AdminProblem denied) => new(denied.Detail) { StatusCode = StatusCodes.Status403Forbidden };
}
