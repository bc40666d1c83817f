using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>User role and team assignment, for the users the signed-in admin may view (their business-unit scope).</summary>
internal sealed class UsersModel(IdentityStore store, AdminOperations operations) : AdminPageModel
{
    public IReadOnlyList<UserInfo> Users { get; private set; } = [];

    public UserInfo? Selected { get; private set; }

    public string BusinessUnitName(UserInfo user) => Guard.Snapshot.BusinessUnits[user.BusinessUnit].Name;

    public IReadOnlyList<RoleInfo> Roles => Guard.Snapshot.Roles;

    public IReadOnlyList<TeamInfo> Teams => Guard.Snapshot.Teams;

    [BindProperty(SupportsGet = true, Name = "user")]
    public string? UserId { get; set; }

    [BindProperty]
    public string? Version { get; set; }

    [BindProperty]
    public List<string> SelectedRoles { get; set; } = [];

    [BindProperty]
    public List<string> SelectedTeams { get; set; } = [];

    public IActionResult OnGet()
    {
        if (Guard.Require(SystemEntities.User, CrmAction.Read) is { } denied)
        {
            return new ObjectResult(denied.Detail) { StatusCode = StatusCodes.Status403Forbidden };
        }

        return Load();
    }

    public async Task<IActionResult> OnPostRolesAsync(CancellationToken cancellationToken) =>
        Result(await operations.SetUserRolesAsync(Guard, UserId ?? "", new NamesBody(SelectedRoles, null, null, null, Version), cancellationToken), "roles");

    public async Task<IActionResult> OnPostTeamsAsync(CancellationToken cancellationToken) =>
        Result(await operations.SetUserTeamsAsync(Guard, UserId ?? "", new NamesBody(null, SelectedTeams, null, null, Version), cancellationToken), "teams");

    private IActionResult Result(Authorization.Store.AdminProblem? problem, string what)
    {
        if (problem is not null)
        {
            Load();
            return Refused(problem);
        }

        return Done($"Saved the {what} of {Guard.Snapshot.User(UserId!)?.UserName}.", "/Admin/Users", new { user = UserId });
    }

    private PageResult Load()
    {
        Refresh();
        var snapshot = Guard.Snapshot;
        Users = [.. snapshot.Users
            .Where(u => u.Definition.ApplicationClientId is null || u.Id == UserId)
            .Where(u => Guard.Covers(SystemEntities.User, CrmAction.Read, snapshot.BusinessUnits[u.BusinessUnit].Id))
            .OrderBy(u => u.UserName, StringComparer.Ordinal)];
        Selected = UserId is null ? null : Users.FirstOrDefault(u => u.Id == UserId);
        if (Selected is not null)
        {
            Version = store.Users.AsNoTracking().Where(u => u.Id == Selected.Id).Select(u => u.ConcurrencyStamp).SingleOrDefault();
        }

        return Page();
    }
}
