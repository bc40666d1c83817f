using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>
/// Field security profiles: create, delete (with the holders named first), the grant editor per secured field (none /
/// read (masked) / read unmasked / update), and which teams hold the profile. Users get profiles on the Users page.
/// </summary>
internal sealed class FieldSecurityModel(IdentityStore store, AdminOperations operations) : AdminPageModel
{
    public IReadOnlyList<FieldProfileInfo> Profiles { get; private set; } = [];

    public FieldProfileInfo? Profile { get; private set; }

    public IReadOnlyList<FieldInfo> SecuredFields { get; private set; } = [];

    public bool CanEdit { get; private set; }

    public bool CanCreate { get; private set; }

    public bool CanDelete { get; private set; }

    /// <summary>The users holding the selected profile directly, by name.</summary>
    public IReadOnlyList<UserInfo> Holders { get; private set; } = [];

    /// <summary>The teams the admin may assign the profile to (their business-unit scope).</summary>
    public IReadOnlyList<TeamInfo> Teams { get; private set; } = [];

    [BindProperty(Name = "new_id")]
    public string? NewId { get; set; }

    [BindProperty(Name = "new_name")]
    public string? NewName { get; set; }

    [BindProperty(Name = "new_description")]
    public string? NewDescription { get; set; }

    [BindProperty(Name = "remove_assignments")]
    public bool RemoveAssignments { get; set; }

    [BindProperty(Name = "team")]
    public string? TeamId { get; set; }

    [BindProperty(Name = "assigned")]
    public bool Assigned { get; set; }

    [BindProperty(SupportsGet = true, Name = "profile")]
    public string? ProfileId { get; set; }

    [BindProperty]
    public int Version { get; set; }

    [BindProperty]
    public Dictionary<string, string> Grants { get; set; } = [];

    public string EntityName(FieldInfo field) => Guard.Snapshot.Entities[field.Entity].Name;

    public FieldGrant GrantOf(FieldInfo field) => Profile is null ? FieldGrant.None : (FieldGrant)Profile.Grants[field.Index];

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (Guard.Require(SystemEntities.FieldProfile, CrmAction.Read) is { } denied)
        {
            return new ObjectResult(denied.Detail) { StatusCode = StatusCodes.Status403Forbidden };
        }

        await LoadAsync(cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        if (ProfileId is null)
        {
            return RedirectToPage();
        }

        var permissions = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var (key, grant) in Grants)
        {
            if (key.Split(':', 2) is [var entity, var field])
            {
                if (!permissions.TryGetValue(entity, out var row))
                {
                    permissions[entity] = row = new(StringComparer.Ordinal);
                }

                row[field] = grant;
            }
        }

        var problem = await operations.UpdateFieldProfileAsync(Guard, ProfileId, new FieldProfileBody(null, null, permissions, Version), cancellationToken);
        if (problem is not null)
        {
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        return Done("Saved the field security profile.", "/Admin/FieldSecurity", new { profile = ProfileId });
    }

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken cancellationToken)
    {
        var problem = await operations.CreateFieldProfileAsync(Guard, new FieldProfileBody(NewName, NewDescription, null, null, NewId), cancellationToken);
        if (problem is not null)
        {
            ProfileId = null;
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        return Done($"Created the field security profile {NewName?.Trim()}.", "/Admin/FieldSecurity", new { profile = NewId });
    }

    /// <summary>Deletes the profile; while it is assigned the page names the holders and asks again (remove_assignments).</summary>
    public async Task<IActionResult> OnPostDeleteAsync(CancellationToken cancellationToken)
    {
        var name = ProfileId is not null && Guard.Snapshot.ProfileIndex(ProfileId) is var index and >= 0 ? Guard.Snapshot.Profiles[index].Name : ProfileId;
        var problem = await operations.DeleteFieldProfileAsync(Guard, ProfileId ?? "", RemoveAssignments, cancellationToken);
        if (problem is not null)
        {
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        return Done($"Deleted the field security profile {name}.", "/Admin/FieldSecurity", null);
    }

    /// <summary>Adds the profile to one team or takes it away, keeping the team's other profiles.</summary>
    public async Task<IActionResult> OnPostTeamAsync(CancellationToken cancellationToken)
    {
        var snapshot = Guard.Snapshot;
        var team = TeamId is null ? -1 : snapshot.TeamIndex(TeamId);
        var profiles = team < 0 ? [] : snapshot.Teams[team].Profiles.Select(p => snapshot.Profiles[p].Id).Where(id => id != ProfileId).ToList();
        if (Assigned && ProfileId is not null)
        {
            profiles.Add(ProfileId);
        }

        var problem = await operations.SetTeamFieldProfilesAsync(Guard, TeamId ?? "", new TeamBody(null, null, null, null, null, profiles), cancellationToken);
        if (problem is not null)
        {
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        return Done($"Saved the field security profiles of team {(team >= 0 ? snapshot.Teams[team].Name : TeamId)}.", "/Admin/FieldSecurity", new { profile = ProfileId });
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Refresh();
        var snapshot = Guard.Snapshot;
        Profiles = [.. snapshot.Profiles.OrderBy(p => p.Name, StringComparer.CurrentCulture)];
        SecuredFields = [.. snapshot.FieldTable.Where(f => f.IsSecured && !snapshot.Entities[f.Entity].IsSystem)];
        CanEdit = Guard.Require(SystemEntities.FieldProfile, CrmAction.Update) is null;
        CanCreate = Guard.Require(SystemEntities.FieldProfile, CrmAction.Create) is null;
        CanDelete = Guard.Require(SystemEntities.FieldProfile, CrmAction.Delete) is null;
        Teams = [.. snapshot.Teams.Where(t => Guard.Covers(SystemEntities.Team, CrmAction.Assign, snapshot.BusinessUnits[t.BusinessUnit].Id)).OrderBy(t => t.Name, StringComparer.CurrentCulture)];
        if (ProfileId is not null && snapshot.ProfileIndex(ProfileId) is var index and >= 0)
        {
            Profile = snapshot.Profiles[index];
            Holders = [.. snapshot.Users.Where(u => u.DirectProfiles.Contains(index)).OrderBy(u => u.UserName, StringComparer.Ordinal)];
            Version = await store.FieldProfiles.AsNoTracking().Where(p => p.Id == ProfileId).Select(p => p.Version).SingleAsync(cancellationToken);
        }
    }
}
