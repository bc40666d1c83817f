using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>
/// User role, team and field security profile assignment and hire and termination dates, for the users the signed-in
/// admin may view (their business-unit scope).
/// </summary>
internal sealed class UsersModel(IdentityStore store, AdminOperations operations, CrmSecurity.Identity.Users.IAccountMail mail, CrmSecurity.Identity.Protocol.PublicOrigin origin, TimeProvider time,
    Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Identity.DataProtectionTokenProviderOptions> tokens) : AdminPageModel
{
    /// <summary>Users locked out after failed sign-ins right now (ASP.NET Core Identity lockout), shown with a "locked" badge.</summary>
    public IReadOnlySet<string> Locked { get; private set; } = new HashSet<string>();

    public IReadOnlyList<UserInfo> Users { get; private set; } = [];

    public UserInfo? Selected { get; private set; }

    public string BusinessUnitName(UserInfo user) => Guard.Snapshot.BusinessUnits[user.BusinessUnit].Name;

    public IReadOnlyList<RoleInfo> Roles => Guard.Snapshot.Roles;

    public IReadOnlyList<TeamInfo> Teams => Guard.Snapshot.Teams;

    /// <summary>The profiles, for the picker; empty when the admin may not view profiles (they are organisation-wide objects).</summary>
    public IReadOnlyList<FieldProfileInfo> Profiles { get; private set; } = [];

    /// <summary>The selected user's dates as stored (the model keeps them too, but the row is what the form edits).</summary>
    public DateOnly? Hired { get; private set; }

    public DateOnly? Terminated { get; private set; }

    [BindProperty]
    public List<string> SelectedProfiles { get; set; } = [];

    [BindProperty(Name = "hired")]
    public string? HiredInput { get; set; }

    [BindProperty(Name = "terminated")]
    public string? TerminatedInput { get; set; }

    public static string Day(DateOnly? day) => day?.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture) ?? "";

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

    public async Task<IActionResult> OnPostProfilesAsync(CancellationToken cancellationToken) =>
        Result(await operations.SetUserFieldProfilesAsync(Guard, UserId ?? "", new NamesBody(null, null, null, null, Version, SelectedProfiles), cancellationToken), "field security profiles");

    public async Task<IActionResult> OnPostEmploymentAsync(CancellationToken cancellationToken) =>
        Result(await operations.SetUserEmploymentAsync(Guard, UserId ?? "", new EmploymentBody(HiredInput, TerminatedInput, Version), cancellationToken), "hire and termination dates");

    /// <summary>Mails the user a reset link; the page says where it went and until when, never the link.</summary>
    public async Task<IActionResult> OnPostResetLinkAsync(CancellationToken cancellationToken)
    {
        var (sent, problem) = await operations.SendPasswordResetLinkAsync(Guard, UserId ?? "", mail, origin, time, tokens.Value.TokenLifespan, cancellationToken);
        if (problem is not null)
        {
            Load();
            return Refused(problem);
        }

        return Done($"Sent a password-reset link to {Guard.Snapshot.User(UserId!)?.UserName} at {sent!.SentTo}; it works once, until {sent.ExpiresAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC.",
            "/Admin/Users", new { user = UserId });
    }

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
        var now = time.GetUtcNow();
        Locked = store.Users.AsNoTracking().Where(u => u.LockoutEnd != null).Select(u => new { u.Id, u.LockoutEnd }).AsEnumerable()
            .Where(u => u.LockoutEnd > now).Select(u => u.Id).ToHashSet();
        if (Selected is not null)
        {
            var row = store.Users.AsNoTracking().Where(u => u.Id == Selected.Id).Select(u => new { u.ConcurrencyStamp, u.Hired, u.Terminated }).SingleOrDefault();
            Version = row?.ConcurrencyStamp;
            Hired = row?.Hired;
            Terminated = row?.Terminated;
        }

        if (Guard.Require(SystemEntities.FieldProfile, CrmAction.Read) is null)
        {
            Profiles = [.. snapshot.Profiles.OrderBy(p => p.Name, StringComparer.CurrentCulture)];
        }

        return Page();
    }
}
