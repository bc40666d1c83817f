using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using Microsoft.AspNetCore.Mvc;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>
/// Record shares the signed-in admin could revoke, filtered by recipient and entity, and revoking one after a
/// confirmation step. Listing and revoking go through <see cref="AdminOperations"/> like the admin API.
/// </summary>
internal sealed class SharesModel(AdminOperations operations) : AdminPageModel
{
    [BindProperty(SupportsGet = true, Name = "user")]
    public string? UserFilter { get; set; }

    [BindProperty(SupportsGet = true, Name = "entity")]
    public string? EntityFilter { get; set; }

    /// <summary>The share the admin asked to revoke, shown for confirmation before anything changes.</summary>
    [BindProperty(SupportsGet = true, Name = "revoke")]
    public string? RevokeId { get; set; }

    public IReadOnlyList<ShareView> Shares { get; private set; } = [];

    public ShareView? ToRevoke { get; private set; }

    public IEnumerable<EntityInfo> Entities => Guard.Snapshot.Entities.Where(e => !e.IsSystem).OrderBy(e => e.Name, StringComparer.Ordinal);

    /// <summary>The users the admin may view, for the recipient picker.</summary>
    public IEnumerable<UserInfo> Users => Guard.Snapshot.Users
        .Where(u => Guard.Covers(SystemEntities.User, CrmAction.Read, Guard.Snapshot.BusinessUnits[u.BusinessUnit].Id))
        .OrderBy(u => u.UserName, StringComparer.Ordinal);

    public IActionResult OnGet() => Load();

    public async Task<IActionResult> OnPostRevokeAsync(CancellationToken cancellationToken)
    {
        var shown = AdminOperations.ListShares(Guard, null, null).Shares.FirstOrDefault(s => s.Id == RevokeId);
        var problem = await operations.DeleteShareAsync(Guard, RevokeId ?? "", cancellationToken);
        if (problem is not null)
        {
            RevokeId = null;
            Load();
            return Refused(problem);
        }

        var what = shown is null ? "the share" : $"the share of {shown.Entity} {shown.RecordId} with {shown.PrincipalKind} {shown.PrincipalName}";
        return Done($"Revoked {what}.", "/Admin/Shares", new { user = UserFilter, entity = EntityFilter });
    }

    private IActionResult Load()
    {
        Refresh();
        var (shares, problem) = AdminOperations.ListShares(Guard, UserFilter, EntityFilter);
        if (problem is not null)
        {
            return Refused(problem);
        }

        Shares = shares;
        ToRevoke = RevokeId is null ? null : shares.FirstOrDefault(s => s.Id == RevokeId);
        return Page();
    }
}
