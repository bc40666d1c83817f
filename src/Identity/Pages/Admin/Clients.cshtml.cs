using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Clients;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>
/// OIDC clients: the list (configuration's marked as such), a form to register or edit one with the grants and scopes this
/// server offers as checkboxes, secret rotation that shows the new secret on this one response only, and deletion after a
/// confirmation step. Each client's application user (Dynamics 365 "application user": the user the client's own tokens act
/// as) is shown with its business unit and roles, linked to the users page where its roles are assigned, and one can be
/// created for a client that has none. Every change goes through <see cref="AdminOperations"/> like the admin API and the verbs.
/// </summary>
internal sealed class ClientsModel(AdminOperations operations, IdentityStore store) : AdminPageModel
{
    /// <summary>A client's application user as the clients table shows it.</summary>
    internal sealed record ApplicationUser(string Id, string UserName, string BusinessUnit, IReadOnlyList<string> Roles, bool Visible);

    /// <summary>The application user of each client that has one, by client id.</summary>
    public IReadOnlyDictionary<string, ApplicationUser> ApplicationUsers { get; private set; } = new Dictionary<string, ApplicationUser>();

    /// <summary><c>?appuser=</c>: the client to create an application user for.</summary>
    [BindProperty(SupportsGet = true, Name = "appuser")]
    public string? AppUserFor { get; set; }

    [BindProperty(Name = "app_user_name")]
    public string? AppUserName { get; set; }

    [BindProperty(Name = "app_business_unit")]
    public string? AppBusinessUnit { get; set; }

    /// <summary>Units where the admin may create users, for the application user's picker.</summary>
    public IReadOnlyList<BusinessUnitNode> AppUserUnits { get; private set; } = [];

    /// <summary>Binding a user to a client needs create on system_user and update on the client (the operation's rules).</summary>
    public bool CanCreateApplicationUser => CanUpdate && Guard.Require(SystemEntities.User, CrmAction.Create) is null;

    /// <summary>Overlaps offered for a rotation (the API and the verbs take any from 0 to 30 days).</summary>
    public static readonly IReadOnlyList<(string Value, string Label)> Overlaps =
        [("0", "none: the old secret stops now"), ("1h", "1 hour"), ("1d", "1 day"), ("7d", "7 days"), ("30d", "30 days")];

    [BindProperty(SupportsGet = true, Name = "edit")]
    public string? EditId { get; set; }

    [BindProperty(SupportsGet = true, Name = "rotate")]
    public string? RotateId { get; set; }

    [BindProperty(SupportsGet = true, Name = "delete")]
    public string? DeleteId { get; set; }

    [BindProperty(Name = "client_id")]
    public string? ClientId { get; set; }

    [BindProperty(Name = "display_name")]
    public string? DisplayName { get; set; }

    [BindProperty(Name = "client_type")]
    public string ClientType { get; set; } = ClientTypes.Confidential;

    [BindProperty(Name = "first_party")]
    public bool FirstParty { get; set; } = true;

    [BindProperty(Name = "grant_types")]
    public List<string> GrantTypes { get; set; } = [];

    [BindProperty(Name = "scopes")]
    public List<string> Scopes { get; set; } = [];

    /// <summary>One URI per line: there is no list to pick them from.</summary>
    [BindProperty(Name = "redirect_uris")]
    public string? RedirectUris { get; set; }

    [BindProperty(Name = "post_logout_redirect_uris")]
    public string? PostLogoutRedirectUris { get; set; }

    [BindProperty(Name = "require_par")]
    public bool RequirePar { get; set; }

    [BindProperty(Name = "version")]
    public string? Version { get; set; }

    [BindProperty(Name = "overlap")]
    public string? Overlap { get; set; }

    public IReadOnlyList<ClientView> Clients { get; private set; } = [];

    /// <summary>The client being edited (null: the form registers a new one).</summary>
    public ClientView? Editing { get; private set; }

    public ClientView? ToRotate { get; private set; }

    public ClientView? ToDelete { get; private set; }

    /// <summary>A secret just made: shown on this response only, never stored in clear or put in TempData.</summary>
    public ClientSecretView? NewSecret { get; private set; }

    public IReadOnlyList<string> SupportedGrants => operations.SupportedGrants;

    public IReadOnlyList<string> KnownScopes => operations.KnownScopes;

    public bool CanCreate => Guard.Require(SystemEntities.Client, CrmAction.Create) is null;

    public bool CanUpdate => Guard.Require(SystemEntities.Client, CrmAction.Update) is null;

    public bool CanDelete => Guard.Require(SystemEntities.Client, CrmAction.Delete) is null;

    public static string GrantLabel(string grant) => ClientRules.ShortGrant(grant);

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (Guard.Require(SystemEntities.Client, CrmAction.Read) is { } denied)
        {
            return Refused(denied);
        }

        await LoadAsync(cancellationToken);
        if (Editing is { } client)
        {
            DisplayName = client.DisplayName;
            ClientType = client.ClientType ?? ClientTypes.Confidential;
            FirstParty = client.FirstParty;
            GrantTypes = [.. client.GrantTypes ?? []];
            Scopes = [.. client.Scopes ?? []];
            RedirectUris = string.Join('\n', client.RedirectUris ?? []);
            PostLogoutRedirectUris = string.Join('\n', client.PostLogoutRedirectUris ?? []);
            RequirePar = client.RequirePar;
            Version = client.Version;
        }
        else
        {
            GrantTypes = [GrantTypes_AuthorizationCode];
            Scopes = ["openid"];
        }

        return Page();
    }

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken cancellationToken)
    {
        var (created, problem) = await operations.CreateClientAsync(Guard, Body(ClientId), cancellationToken);
        if (problem is not null)
        {
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        return await ShowSecretAsync(created!, $"Registered the client '{created!.ClientId}'.", cancellationToken);
    }

    public async Task<IActionResult> OnPostUpdateAsync(CancellationToken cancellationToken)
    {
        var problem = await operations.UpdateClientAsync(Guard, EditId ?? "", Body(null) with { ClientType = null, Version = Version }, cancellationToken);
        if (problem is not null)
        {
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        return Done($"Saved the client '{EditId}'.", "/Admin/Clients", null);
    }

    public async Task<IActionResult> OnPostRotateAsync(CancellationToken cancellationToken)
    {
        var (rotated, problem) = await operations.RotateClientSecretAsync(Guard, RotateId ?? "", new SecretRotationBody(Overlap), cancellationToken);
        if (problem is not null)
        {
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        return await ShowSecretAsync(rotated!, $"The client '{rotated!.ClientId}' has a new secret.", cancellationToken);
    }

    public async Task<IActionResult> OnPostDeleteAsync(CancellationToken cancellationToken)
    {
        var (revoked, problem) = await operations.DeleteClientAsync(Guard, DeleteId ?? "", null, cancellationToken);
        if (problem is not null)
        {
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        return Done($"Deleted the client '{DeleteId}'; {revoked?.TokensRevoked ?? 0} of its tokens revoked.", "/Admin/Clients", null);
    }

    /// <summary>
    /// Creates the client's application user through <see cref="AdminOperations.CreateUserAsync"/> (the API's
    /// <c>POST /admin/api/users</c> with <c>application_client_id</c>), then opens it on the users page for its roles.
    /// </summary>
    public async Task<IActionResult> OnPostApplicationUserAsync(CancellationToken cancellationToken)
    {
        var clientId = AppUserFor ?? "";
        var name = string.IsNullOrWhiteSpace(AppUserName) ? clientId + "-app" : AppUserName;
        var (id, problem) = await operations.CreateUserAsync(Guard,
            new UserBody(name, $"{clientId} (application user)", null, AppBusinessUnit ?? "", null, clientId), cancellationToken);
        if (problem is not null)
        {
            await LoadAsync(cancellationToken);
            return Refused(problem);
        }

        return Done($"Created {name.Trim()}, the application user of client '{clientId}': it has no roles yet; assign them below.", "/Admin/Users",
            new { kind = "applications", user = id });
    }

    private const string GrantTypes_AuthorizationCode = OpenIddict.Abstractions.OpenIddictConstants.GrantTypes.AuthorizationCode;

    private ClientBody Body(string? clientId) => new(
        clientId,
        string.IsNullOrWhiteSpace(DisplayName) ? null : DisplayName,
        ClientType,
        FirstParty,
        Lines(RedirectUris),
        Lines(PostLogoutRedirectUris),
        GrantTypes,
        Scopes,
        RequirePar: RequirePar);

    private static List<string> Lines(string? text) =>
        [.. (text ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>
    /// The secret goes into this response (no-store, like every page here) and nowhere else: a redirect would need it in
    /// TempData, a cookie the browser keeps.
    /// </summary>
    private async Task<IActionResult> ShowSecretAsync(ClientSecretView secret, string message, CancellationToken cancellationToken)
    {
        Refresh();
        EditId = RotateId = DeleteId = null;
        await LoadAsync(cancellationToken);
        NewSecret = secret;
        TempData["Message"] = message;
        HttpContext.Items[Shared.SecurityHeaders.ScriptNonceItem] = true;
        return Page();
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Clients = await operations.ListClientsAsync(cancellationToken);
        Editing = EditId is null ? null : Clients.FirstOrDefault(c => c.ClientId == EditId);
        ToRotate = RotateId is null ? null : Clients.FirstOrDefault(c => c.ClientId == RotateId);
        ToDelete = DeleteId is null ? null : Clients.FirstOrDefault(c => c.ClientId == DeleteId);

        var snapshot = Guard.Snapshot;
        var bound = await store.Users.AsNoTracking().Where(u => u.ApplicationClientId != null)
            .Select(u => new { u.Id, u.UserName, u.BusinessUnit, u.ApplicationClientId }).ToListAsync(cancellationToken);
        ApplicationUsers = bound.ToDictionary(u => u.ApplicationClientId!, u =>
        {
            // Its name, unit and roles only where the admin may view users of its unit (the users API's rule).
            var visible = Guard.Covers(SystemEntities.User, CrmAction.Read, u.BusinessUnit);
            var roles = visible && snapshot.User(u.Id) is { } info ? info.DirectRoles.Select(r => snapshot.Roles[r].Name).Order(StringComparer.CurrentCulture).ToList() : [];
            return new ApplicationUser(u.Id, u.UserName ?? u.Id, Guard.BusinessUnitName(u.BusinessUnit ?? Guard.RootId), roles, visible);
        }, StringComparer.Ordinal);

        if (AppUserFor is not null && CanCreateApplicationUser && Clients.Any(c => c.ClientId == AppUserFor) && !ApplicationUsers.ContainsKey(AppUserFor))
        {
            var versions = await store.BusinessUnits.AsNoTracking().ToDictionaryAsync(b => b.Id, b => b.Version, cancellationToken);
            AppUserUnits = [.. AdminOperations.BusinessUnitTree(Guard, versions).Where(n => Guard.Covers(SystemEntities.User, CrmAction.Create, n.View.Id))];
        }
    }
}
