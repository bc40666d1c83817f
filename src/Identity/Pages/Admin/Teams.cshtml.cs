using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>
/// Teams (Dynamics 365 owner teams): create one in an owning business unit, rename it, add and remove members found with a
/// search picker, assign and remove its roles, delete it after a confirmation step. Every change is the admin API's own
/// <see cref="AdminOperations"/> call with the signed-in admin's <see cref="AdminGuard"/>, so a business-unit admin sees and
/// changes only the teams and people of their units, and nobody hands out a role they do not hold.
/// </summary>
internal sealed class TeamsModel(IdentityStore store, AdminOperations operations, TimeProvider time) : AdminPageModel
{
    public IReadOnlyList<TeamInfo> Teams { get; private set; } = [];

    public TeamInfo? Selected { get; private set; }

    public int SelectedVersion { get; private set; }

    /// <summary>Units the admin may create a team in.</summary>
    public IReadOnlyList<BusinessUnitNode> CreateUnits { get; private set; } = [];

    /// <summary>Users found by the member picker's search (<c>member_q</c>), not already members.</summary>
    public IReadOnlyList<UserView> Candidates { get; private set; } = [];

    /// <summary>Which form the problem belongs to, so its control is the one marked invalid.</summary>
    public string? ProblemForm { get; private set; }

    [BindProperty(SupportsGet = true, Name = "team")]
    public string? TeamId { get; set; }

    [BindProperty(SupportsGet = true, Name = "delete")]
    public bool ConfirmDelete { get; set; }

    [BindProperty(SupportsGet = true, Name = "member_q")]
    public string? MemberText { get; set; }

    [BindProperty]
    public string? NewId { get; set; }

    [BindProperty]
    public string? Name { get; set; }

    [BindProperty(Name = "business_unit")]
    public string? BusinessUnit { get; set; }

    [BindProperty]
    public int? Version { get; set; }

    [BindProperty(Name = "member")]
    public string? Member { get; set; }

    [BindProperty]
    public List<string> SelectedRoles { get; set; } = [];

    public IReadOnlyList<RoleInfo> Roles => Guard.Snapshot.Roles;

    public string UnitName(TeamInfo team) => Guard.Snapshot.BusinessUnits[team.BusinessUnit].Name;

    public string UnitId(TeamInfo team) => Guard.Snapshot.BusinessUnits[team.BusinessUnit].Id;

    public string MemberUnit(UserInfo user) => Guard.Snapshot.BusinessUnits[user.BusinessUnit].Name;

    public UserInfo UserAt(int index) => Guard.Snapshot.Users[index];

    public bool Can(CrmAction action, TeamInfo team) => Guard.Covers(SystemEntities.Team, action, UnitId(team));

    /// <summary>May the admin add or remove this person (view and assign them, and not themselves)?</summary>
    public bool CanChangeMember(UserInfo user) =>
        user.Index != Guard.Caller && Guard.Covers(SystemEntities.User, CrmAction.Assign, Guard.Snapshot.BusinessUnits[user.BusinessUnit].Id);

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (Guard.Require(SystemEntities.Team, CrmAction.Read) is { } denied)
        {
            return new ObjectResult(denied.Detail) { StatusCode = StatusCodes.Status403Forbidden };
        }

        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken cancellationToken)
    {
        var id = NewId?.Trim();
        var problem = await operations.CreateTeamAsync(Guard, new TeamBody(id, Name, BusinessUnit, [], null), cancellationToken);
        return problem is null
            ? Done($"Created the team {Name!.Trim()} in {Guard.BusinessUnitName(BusinessUnit!)}.", "/Admin/Teams", new { team = id })
            : await RefusedAsync("create", problem, cancellationToken);
    }

    public async Task<IActionResult> OnPostRenameAsync(CancellationToken cancellationToken)
    {
        var problem = await operations.RenameTeamAsync(Guard, TeamId ?? "", new TeamBody(null, Name, null, null, Version), cancellationToken);
        return problem is null
            ? Done($"Renamed the team to {Name!.Trim()}.", "/Admin/Teams", new { team = TeamId })
            : await RefusedAsync("rename", problem, cancellationToken);
    }

    public async Task<IActionResult> OnPostAddMemberAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(Member))
        {
            return await RefusedAsync("member", AdminProblem.Invalid("member", "Pick a user to add: search for them first."), cancellationToken);
        }

        var problem = await operations.ChangeTeamMembersAsync(Guard, TeamId ?? "", [Member], [], Version, "member", null, cancellationToken);
        return problem is null
            ? Done($"Added {Guard.Snapshot.User(Member)?.UserName} to the team {TeamName()}.", "/Admin/Teams", new { team = TeamId })
            : await RefusedAsync("member", problem, cancellationToken);
    }

    public async Task<IActionResult> OnPostRemoveMemberAsync(CancellationToken cancellationToken)
    {
        var problem = await operations.ChangeTeamMembersAsync(Guard, TeamId ?? "", [], [Member ?? ""], Version, "member", null, cancellationToken);
        return problem is null
            ? Done($"Removed {Guard.Snapshot.User(Member ?? "")?.UserName} from the team {TeamName()}.", "/Admin/Teams", new { team = TeamId })
            : await RefusedAsync("member", problem, cancellationToken);
    }

    public async Task<IActionResult> OnPostRolesAsync(CancellationToken cancellationToken)
    {
        var problem = await operations.SetTeamRolesAsync(Guard, TeamId ?? "", new TeamBody(null, null, null, SelectedRoles, Version), cancellationToken);
        return problem is null
            ? Done($"Saved the roles of the team {TeamName()}.", "/Admin/Teams", new { team = TeamId })
            : await RefusedAsync("roles", problem, cancellationToken);
    }

    public async Task<IActionResult> OnPostDeleteAsync(CancellationToken cancellationToken)
    {
        var name = TeamName();
        var problem = await operations.DeleteTeamAsync(Guard, TeamId ?? "", cancellationToken);
        return problem is null
            ? Done($"Deleted the team {name}.", "/Admin/Teams", null)
            : await RefusedAsync("delete", problem, cancellationToken);
    }

    private string TeamName() => Guard.Snapshot.TeamIndex(TeamId ?? "") is var i and >= 0 ? Guard.Snapshot.Teams[i].Name : TeamId ?? "";

    private async Task<IActionResult> RefusedAsync(string form, AdminProblem problem, CancellationToken cancellationToken)
    {
        ProblemForm = form;
        ConfirmDelete = false;
        await LoadAsync(cancellationToken);
        return Refused(problem);
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Refresh();
        var snapshot = Guard.Snapshot;
        Teams = [.. snapshot.Teams.Where(t => Can(CrmAction.Read, t)).OrderBy(t => t.Name, StringComparer.CurrentCulture)];
        Selected = TeamId is null ? null : Teams.FirstOrDefault(t => t.Id == TeamId);
        var versions = await store.BusinessUnits.AsNoTracking().ToDictionaryAsync(b => b.Id, b => b.Version, cancellationToken);
        CreateUnits = [.. AdminOperations.BusinessUnitTree(Guard, versions).Where(n => Guard.Covers(SystemEntities.Team, CrmAction.Create, n.View.Id))];
        if (Selected is null)
        {
            return;
        }

        SelectedVersion = await store.Teams.AsNoTracking().Where(t => t.Id == Selected.Id).Select(t => t.Version).SingleOrDefaultAsync(cancellationToken);
        if (!string.IsNullOrWhiteSpace(MemberText))
        {
            var text = MemberText.Trim();
            var (found, _) = await AdminOperations.SearchUsersAsync(Guard, store,
                UserQuery.Default with { Text = text[..Math.Min(text.Length, UserQuery.MaxTextLength)], Kind = "all", Limit = 20 }, time.GetUtcNow(), cancellationToken);
            var members = Selected.Members.Select(m => snapshot.Users[m].Id).ToHashSet(StringComparer.Ordinal);
            Candidates = [.. (found?.Users ?? []).Where(u => !members.Contains(u.Id))];
        }
    }
}
