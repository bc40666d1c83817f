using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>The field security profile editor: per secured field, none / read (masked) / read unmasked / update.</summary>
internal sealed class FieldSecurityModel(IdentityStore store, AdminOperations operations) : AdminPageModel
{
    public IReadOnlyList<FieldProfileInfo> Profiles { get; private set; } = [];

    public FieldProfileInfo? Profile { get; private set; }

    public IReadOnlyList<FieldInfo> SecuredFields { get; private set; } = [];

    public bool CanEdit { get; private set; }

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

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Refresh();
        var snapshot = Guard.Snapshot;
        Profiles = [.. snapshot.Profiles.OrderBy(p => p.Name, StringComparer.CurrentCulture)];
        SecuredFields = [.. snapshot.FieldTable.Where(f => f.IsSecured && !snapshot.Entities[f.Entity].IsSystem)];
        CanEdit = Guard.Require(SystemEntities.FieldProfile, CrmAction.Update) is null;
        if (ProfileId is not null && snapshot.ProfileIndex(ProfileId) is var index and >= 0)
        {
            Profile = snapshot.Profiles[index];
            Version = await store.FieldProfiles.AsNoTracking().Where(p => p.Id == ProfileId).Select(p => p.Version).SingleAsync(cancellationToken);
        }
    }
}
