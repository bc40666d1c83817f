using System.Globalization;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Pages.Shared;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>
/// The users console: a server-side search (user name, display name, e-mail) with sortable columns and pages, people or
/// application users, then for one user the daily tasks: disable or enable, unlock, reset the second factor (each after a
/// confirmation step), password-reset link, manager and business unit with pickers, roles, teams and field security
/// profiles, hire and termination dates. Every read and change goes through <see cref="AdminOperations"/> with the
/// signed-in admin's <see cref="AdminGuard"/>, the same code path as the admin API, so the page can do nothing the API
/// would refuse and a business-unit admin sees and changes only their units' users.
/// </summary>
internal sealed class UsersModel(IdentityStore store, AdminOperations operations, CrmSecurity.Identity.Users.IAccountMail mail, CrmSecurity.Identity.Protocol.PublicOrigin origin, TimeProvider time,
    Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Identity.DataProtectionTokenProviderOptions> tokens) : AdminPageModel
{
    public static readonly int[] PageSizes = [25, 50, 100];

    /// <summary>The confirmation steps a button may ask for (<c>?confirm=</c>), with the button's words.</summary>
    public static readonly IReadOnlyDictionary<string, string> Confirmations = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["disable"] = "Disable",
        ["enable"] = "Enable",
        ["unlock"] = "Unlock",
        ["reset-mfa"] = "Reset two-step verification of",
    };

    /// <summary>The page handler of a confirmed action.</summary>
    public static string Handler(string confirm) => confirm switch
    {
        "disable" => "Disable",
        "enable" => "Enable",
        "unlock" => "Unlock",
        _ => "ResetMfa",
    };

    public UserPage? Results { get; private set; }

    public UserQuery Query { get; private set; } = UserQuery.Default;

    public TimeZoneInfo Zone { get; private set; } = TimeZoneInfo.Utc;

    public UserInfo? Selected { get; private set; }

    /// <summary>The selected user's row (status, e-mail, lockout, second factor, manager, client).</summary>
    public UserView? SelectedView { get; private set; }

    /// <summary>How many passkeys the selected user has (removed by a second-factor reset).</summary>
    public int SelectedPasskeys { get; private set; }

    public string BusinessUnitName(string? id) => id is null ? Guard.Snapshot.BusinessUnits[Guard.Snapshot.RootBusinessUnit].Name : Guard.BusinessUnitName(id);

    public string UserName(string? id) => id is not null && Guard.Snapshot.User(id) is { } user ? $"{user.DisplayName} ({user.UserName})" : "none";

    public IReadOnlyList<RoleInfo> Roles => Guard.Snapshot.Roles;

    /// <summary>Teams the admin may view, and any the user is in (shown, so saving keeps what the admin cannot see).</summary>
    public IEnumerable<TeamInfo> Teams => Guard.Snapshot.Teams
        .Where(t => Guard.Covers(SystemEntities.Team, CrmAction.Read, Guard.Snapshot.BusinessUnits[t.BusinessUnit].Id) || (Selected?.Teams.Contains(t.Index) ?? false))
        .OrderBy(t => t.Name, StringComparer.CurrentCulture);

    /// <summary>The profiles, for the picker; empty when the admin may not view profiles (they are organisation-wide objects).</summary>
    public IReadOnlyList<FieldProfileInfo> Profiles { get; private set; } = [];

    /// <summary>Units the selected user may be moved to: those where the admin may update users (the API's own rule).</summary>
    public IReadOnlyList<BusinessUnitNode> MoveTargets { get; private set; } = [];

    /// <summary>Users found by the manager picker's search (<c>manager_q</c>).</summary>
    public IReadOnlyList<UserView> ManagerCandidates { get; private set; } = [];

    /// <summary>The selected user's dates as stored (the model keeps them too, but the row is what the form edits).</summary>
    public DateOnly? Hired { get; private set; }

    public DateOnly? Terminated { get; private set; }

    public static string Day(DateOnly? day) => day?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? "";

    [BindProperty(SupportsGet = true, Name = "q")]
    public string? Text { get; set; }

    [BindProperty(SupportsGet = true, Name = "kind")]
    public string? Kind { get; set; }

    [BindProperty(SupportsGet = true, Name = "status")]
    public string? Status { get; set; }

    [BindProperty(SupportsGet = true, Name = "sort")]
    public string? Sort { get; set; }

    [BindProperty(SupportsGet = true, Name = "order")]
    public string? Order { get; set; }

    [BindProperty(SupportsGet = true, Name = "pg")]
    public string? PageNumber { get; set; }

    [BindProperty(SupportsGet = true, Name = "size")]
    public string? Size { get; set; }

    [BindProperty(SupportsGet = true, Name = "user")]
    public string? UserId { get; set; }

    /// <summary>Set by an action's button: the page asks before it acts (disable, enable, unlock, reset-mfa).</summary>
    [BindProperty(SupportsGet = true, Name = "confirm")]
    public string? Confirm { get; set; }

    [BindProperty(SupportsGet = true, Name = "manager_q")]
    public string? ManagerText { get; set; }

    [BindProperty]
    public string? Version { get; set; }

    [BindProperty]
    public List<string> SelectedRoles { get; set; } = [];

    [BindProperty]
    public List<string> SelectedTeams { get; set; } = [];

    [BindProperty]
    public List<string> SelectedProfiles { get; set; } = [];

    [BindProperty(Name = "hired")]
    public string? HiredInput { get; set; }

    [BindProperty(Name = "terminated")]
    public string? TerminatedInput { get; set; }

    [BindProperty(Name = "business_unit")]
    public string? BusinessUnitInput { get; set; }

    [BindProperty(Name = "manager")]
    public string? ManagerInput { get; set; }

    /// <summary><c>?create=1</c> opens the form that creates a user.</summary>
    [BindProperty(SupportsGet = true, Name = "create")]
    public string? CreateMode { get; set; }

    [BindProperty(Name = "new_user_name")]
    public string? NewUserName { get; set; }

    [BindProperty(Name = "new_display_name")]
    public string? NewDisplayName { get; set; }

    [BindProperty(Name = "new_email")]
    public string? NewEmail { get; set; }

    [BindProperty(Name = "new_business_unit")]
    public string? NewBusinessUnit { get; set; }

    [BindProperty(Name = "new_manager")]
    public string? NewManager { get; set; }

    /// <summary>Mail the new person a one-time link to choose their password (the password-reset machinery).</summary>
    [BindProperty(Name = "send_link")]
    public bool SendLink { get; set; }

    /// <summary>The profile form's fields as posted: shown again after a refusal, so nothing typed is lost.</summary>
    [BindProperty(Name = "profile_display_name")]
    public string? ProfileDisplayName { get; set; }

    [BindProperty(Name = "profile_email")]
    public string? ProfileEmail { get; set; }

    /// <summary>Which form a refusal is about (<c>create</c> or <c>profile</c>), so its message stands beside the right control.</summary>
    public string? FailedForm { get; private set; }

    /// <summary>Units where the admin may create users (the operation's own rule), for the create form's picker.</summary>
    public IReadOnlyList<BusinessUnitNode> CreateTargets { get; private set; } = [];

    /// <summary>People the admin may view, for the create form's manager picker (the first 500 by name).</summary>
    public IReadOnlyList<UserView> ManagerChoices { get; private set; } = [];

    public bool CanCreate => CreateTargets.Count > 0;

    /// <summary>Whether the admin holds create on system_user at all (the link to the form is shown only then).</summary>
    public bool MayCreate => Guard.Require(SystemEntities.User, CrmAction.Create) is null;

    /// <summary>The message for <paramref name="field"/> of <paramref name="form"/> when the last post was refused there.</summary>
    public string? FieldError(string form, string field) => FailedForm == form && ProblemField == field ? ProblemFieldMessage ?? Problem : null;

    public int CurrentPage => Query.Offset / Query.Limit + 1;

    public int PageCount => Results is null ? 1 : Math.Max(1, (Results.Total + Query.Limit - 1) / Query.Limit);

    /// <summary>The list's address with some of its state changed (null removes a value), so every link keeps the search.</summary>
    public string Link(IReadOnlyDictionary<string, string?> changes)
    {
        var state = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["q"] = Query.Text,
            ["kind"] = Query.Kind == "people" ? null : Query.Kind,
            ["status"] = Query.Status == "any" ? null : Query.Status,
            ["sort"] = Query.Sort == "user_name" ? null : Query.Sort,
            ["order"] = Query.Descending ? "desc" : null,
            ["size"] = Query.Limit == PageSizes[0] ? null : Query.Limit.ToString(CultureInfo.InvariantCulture),
            ["pg"] = CurrentPage == 1 ? null : CurrentPage.ToString(CultureInfo.InvariantCulture),
            ["user"] = Selected?.Id,
        };
        foreach (var (key, value) in changes)
        {
            state[key] = value;
        }

        var query = string.Join("&", state.Where(p => !string.IsNullOrEmpty(p.Value)).Select(p => $"{p.Key}={Uri.EscapeDataString(p.Value!)}"));
        return query.Length == 0 ? "/admin/users" : "/admin/users?" + query;
    }

    /// <summary>The list state as route values for a redirect after a change.</summary>
    private object State(string? user) => new
    {
        q = Text,
        kind = Kind,
        status = Status,
        sort = Sort,
        order = Order,
        pg = PageNumber,
        size = Size,
        user,
    };

    /// <summary>A sortable column header: ascending first, the other way round when it is the current sort.</summary>
    public string SortLink(string column) => Link(new Dictionary<string, string?>
    {
        ["sort"] = column == "user_name" ? null : column,
        ["order"] = Query.Sort == column && !Query.Descending ? "desc" : null,
        ["pg"] = null,
    });

    /// <summary>WAI-ARIA 1.2 aria-sort for a column header.</summary>
    public string AriaSort(string column) => Query.Sort != column ? "none" : Query.Descending ? "descending" : "ascending";

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (Guard.Require(SystemEntities.User, CrmAction.Read) is { } denied)
        {
            return new ObjectResult(denied.Detail) { StatusCode = StatusCodes.Status403Forbidden };
        }

        if (Confirm is not null && !Confirmations.ContainsKey(Confirm))
        {
            Confirm = null;
        }

        return await LoadAsync(cancellationToken);
    }

    public Task<IActionResult> OnPostDisableAsync(CancellationToken cancellationToken) => AccountAsync("disable", cancellationToken);

    public Task<IActionResult> OnPostEnableAsync(CancellationToken cancellationToken) => AccountAsync("enable", cancellationToken);

    public Task<IActionResult> OnPostUnlockAsync(CancellationToken cancellationToken) => AccountAsync("unlock", cancellationToken);

    public Task<IActionResult> OnPostResetMfaAsync(CancellationToken cancellationToken) => AccountAsync("reset-mfa", cancellationToken);

    public async Task<IActionResult> OnPostRolesAsync(CancellationToken cancellationToken) =>
        await ResultAsync(await operations.SetUserRolesAsync(Guard, UserId ?? "", new NamesBody(SelectedRoles, null, null, null, Version), cancellationToken), "roles", cancellationToken);

    public async Task<IActionResult> OnPostTeamsAsync(CancellationToken cancellationToken) =>
        await ResultAsync(await operations.SetUserTeamsAsync(Guard, UserId ?? "", new NamesBody(null, SelectedTeams, null, null, Version), cancellationToken), "teams", cancellationToken);

    public async Task<IActionResult> OnPostProfilesAsync(CancellationToken cancellationToken) =>
        await ResultAsync(await operations.SetUserFieldProfilesAsync(Guard, UserId ?? "", new NamesBody(null, null, null, null, Version, SelectedProfiles), cancellationToken),
            "field security profiles", cancellationToken);

    public async Task<IActionResult> OnPostEmploymentAsync(CancellationToken cancellationToken) =>
        await ResultAsync(await operations.SetUserEmploymentAsync(Guard, UserId ?? "", new EmploymentBody(HiredInput, TerminatedInput, Version), cancellationToken),
            "hire and termination dates", cancellationToken);

    public async Task<IActionResult> OnPostMoveAsync(CancellationToken cancellationToken) =>
        await ResultAsync(await operations.SetUserBusinessUnitAsync(Guard, UserId ?? "", new NamesBody(null, null, BusinessUnitInput ?? "", null, Version), cancellationToken),
            "business unit", cancellationToken);

    public async Task<IActionResult> OnPostManagerAsync(CancellationToken cancellationToken) =>
        await ResultAsync(await operations.SetUserManagerAsync(Guard, UserId ?? "", new ManagerBody(ManagerInput ?? "", Version), cancellationToken), "manager", cancellationToken);

    /// <summary>
    /// Creates a person through <see cref="AdminOperations.CreateUserAsync"/>, the API's own operation (so its audit entry and
    /// its refusals: a business-unit admin who posts a unit outside his reach is refused there, whatever the picker offered),
    /// then selects the new user; optionally mails them a one-time link to choose a password.
    /// </summary>
    public async Task<IActionResult> OnPostCreateAsync(CancellationToken cancellationToken)
    {
        var body = new UserBody(NewUserName, NewDisplayName, NewEmail, NewBusinessUnit ?? "", null, null, string.IsNullOrWhiteSpace(NewManager) ? null : NewManager);
        var (id, problem) = await operations.CreateUserAsync(Guard, body, cancellationToken);
        if (problem is not null)
        {
            FailedForm = "create";
            CreateMode = "1";
            return await RefusedAsync(problem, cancellationToken);
        }

        Refresh();
        var name = Guard.Snapshot.User(id!)?.UserName ?? NewUserName;
        var message = $"Created {name} in {Guard.BusinessUnitName(NewBusinessUnit!)}.";
        if (SendLink)
        {
            var (sent, linkProblem) = await operations.SendPasswordResetLinkAsync(Guard, id!, mail, origin, time, tokens.Value.TokenLifespan, cancellationToken);
            message += linkProblem is null
                ? $" Sent a one-time link to choose a password to {sent!.SentTo}; it works once, until {sent.ExpiresAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC."
                : $" No password link was sent: {linkProblem.Detail}";
        }

        return Done(message, "/Admin/Users", State(id));
    }

    /// <summary>Display name and e-mail address: <see cref="AdminOperations.UpdateUserProfileAsync"/>, as <c>PUT /admin/api/users/{id}</c>.</summary>
    public async Task<IActionResult> OnPostProfileAsync(CancellationToken cancellationToken)
    {
        var problem = await operations.UpdateUserProfileAsync(Guard, UserId ?? "", new UserProfileBody(ProfileDisplayName ?? "", ProfileEmail ?? "", Version), cancellationToken);
        if (problem is not null)
        {
            FailedForm = "profile";
        }

        return await ResultAsync(problem, "name and e-mail address", cancellationToken);
    }

    /// <summary>Mails the user a reset link; the page says where it went and until when, never the link.</summary>
    public async Task<IActionResult> OnPostResetLinkAsync(CancellationToken cancellationToken)
    {
        var (sent, problem) = await operations.SendPasswordResetLinkAsync(Guard, UserId ?? "", mail, origin, time, tokens.Value.TokenLifespan, cancellationToken);
        if (problem is not null)
        {
            return await RefusedAsync(problem, cancellationToken);
        }

        return Done($"Sent a password-reset link to {Guard.Snapshot.User(UserId!)?.UserName} at {sent!.SentTo}; it works once, until {sent.ExpiresAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC.",
            "/Admin/Users", State(UserId));
    }

    /// <summary>The confirmed account actions, each the API's own operation (and so its audit entry and its refusals).</summary>
    private async Task<IActionResult> AccountAsync(string action, CancellationToken cancellationToken)
    {
        var id = UserId ?? "";
        var name = Guard.Snapshot.User(id)?.UserName ?? id;
        var (problem, message) = action switch
        {
            "disable" => ((await operations.SetUserDisabledAsync(Guard, id, true, null, cancellationToken)).Problem,
                $"Disabled {name}: every token, authorization and session of {name} was revoked."),
            "enable" => ((await operations.SetUserDisabledAsync(Guard, id, false, null, cancellationToken)).Problem, $"Enabled {name}."),
            "unlock" => (await operations.UnlockUserAsync(Guard, id, cancellationToken), $"Unlocked {name}: the failed sign-ins are forgotten."),
            _ => (await operations.ResetMfaAsync(Guard, id, cancellationToken),
                $"Reset the two-step verification of {name}: authenticator, recovery codes and passkeys removed, sessions ended; the next sign-in enrols again."),
        };
        return problem is null ? Done(message, "/Admin/Users", State(UserId)) : await RefusedAsync(problem, cancellationToken);
    }

    private async Task<IActionResult> ResultAsync(AdminProblem? problem, string what, CancellationToken cancellationToken) =>
        problem is null
            ? Done($"Saved the {what} of {Guard.Snapshot.User(UserId!)?.UserName}.", "/Admin/Users", State(UserId))
            : await RefusedAsync(problem, cancellationToken);

    private async Task<IActionResult> RefusedAsync(AdminProblem problem, CancellationToken cancellationToken)
    {
        Confirm = null;
        await LoadAsync(cancellationToken);
        return Refused(problem);
    }

    private async Task<IActionResult> LoadAsync(CancellationToken cancellationToken)
    {
        Refresh();
        var snapshot = Guard.Snapshot;
        var now = time.GetUtcNow();
        Zone = PersonTimeZone.Of(Guard.CallerInfo.Definition.ZoneInfo);
        var limit = int.TryParse(Size, NumberStyles.None, CultureInfo.InvariantCulture, out var size) && PageSizes.Contains(size) ? size : PageSizes[0];
        var page = int.TryParse(PageNumber, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is > 0 and < 1_000_000 ? p : 1;
        var (query, bad) = UserQuery.Parse(name => name switch
        {
            "q" => Text, "kind" => Kind, "status" => Status, "sort" => Sort, "order" => Order, _ => null,
        }, defaultKind: "people", defaultLimit: limit);
        if (bad is not null)
        {
            // A hand-edited address: show the default list and say what was wrong.
            Problem = bad.Detail;
            ProblemField = bad.Errors?.Keys.FirstOrDefault();
            query = UserQuery.Default with { Kind = "people", Limit = limit };
        }

        Query = query! with { Offset = (page - 1) * limit };
        var (results, denied) = await AdminOperations.SearchUsersAsync(Guard, store, Query, now, cancellationToken);
        if (denied is not null)
        {
            return new ObjectResult(denied.Detail) { StatusCode = StatusCodes.Status403Forbidden };
        }

        Results = results;

        // The selected user only when the admin may view them: the same rule as GET /admin/api/users/{id}.
        var selected = UserId is null ? null : snapshot.User(UserId);
        if (selected is not null && Guard.Covers(SystemEntities.User, CrmAction.Read, snapshot.BusinessUnits[selected.BusinessUnit].Id))
        {
            var row = await store.Users.AsNoTracking().SingleOrDefaultAsync(u => u.Id == selected.Id, cancellationToken);
            if (row is not null)
            {
                Selected = selected;
                SelectedView = AdminOperations.View(snapshot, row, now);
                Version = row.ConcurrencyStamp;
                Hired = row.Hired;
                Terminated = row.Terminated;
                SelectedPasskeys = await store.UserPasskeys.CountAsync(k => k.UserId == row.Id, cancellationToken);
                var versions = await store.BusinessUnits.AsNoTracking().ToDictionaryAsync(b => b.Id, b => b.Version, cancellationToken);
                MoveTargets = [.. AdminOperations.BusinessUnitTree(Guard, versions).Where(n => Guard.Covers(SystemEntities.User, CrmAction.Update, n.View.Id))];
                if (!string.IsNullOrWhiteSpace(ManagerText))
                {
                    var (candidates, _) = await AdminOperations.SearchUsersAsync(Guard, store,
                        UserQuery.Default with { Text = ManagerText.Trim()[..Math.Min(ManagerText.Trim().Length, UserQuery.MaxTextLength)], Kind = "people", Limit = 20 }, now, cancellationToken);
                    ManagerCandidates = [.. (candidates?.Users ?? []).Where(u => u.Id != row.Id)];
                }
            }
        }

        if (CreateMode is not null)
        {
            var versions = await store.BusinessUnits.AsNoTracking().ToDictionaryAsync(b => b.Id, b => b.Version, cancellationToken);
            CreateTargets = [.. AdminOperations.BusinessUnitTree(Guard, versions).Where(n => Guard.Covers(SystemEntities.User, CrmAction.Create, n.View.Id))];
            var (people, _) = await AdminOperations.SearchUsersAsync(Guard, store, UserQuery.Default with { Kind = "people", Sort = "display_name", Limit = 500 }, now, cancellationToken);
            ManagerChoices = people?.Users ?? [];
        }

        if (Guard.Require(SystemEntities.FieldProfile, CrmAction.Read) is null)
        {
            Profiles = [.. snapshot.Profiles.OrderBy(profile => profile.Name, StringComparer.CurrentCulture)];
        }

        return Page();
    }
}
