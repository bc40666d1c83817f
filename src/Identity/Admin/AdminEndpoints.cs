using System.Globalization;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Policies;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Incident;
using CrmSecurity.Shared;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Net.Http.Headers;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// The admin REST API under <c>/admin/api</c>: users, roles and their privilege matrix, business units, teams, field
/// security profiles, shares, OIDC clients and "who can access". Callers present a bearer access token of this server
/// with scope <c>identity.admin</c> (audience <c>crm-security-identity</c>); what they may do then comes from their admin
/// privileges in the model (<see cref="AdminGuard"/>), never from the scope alone. Errors are RFC 9457 problem details.
/// </summary>
internal static class AdminEndpoints
{
    public const string DocumentName = "admin";

    public static IServiceCollection AddIdentityAdmin(this IServiceCollection services)
    {
        services.AddScoped<AdminOperations>();
        services.AddScoped<AuditTrailViewer>();
        services.AddSingleton<AdminSecondFactor>();
        services.AddScoped<Microsoft.AspNetCore.Identity.IPasswordValidator<Data.CrmUser>, ApplicationUsersHaveNoPassword>();
        services.AddOpenApi(DocumentName, options => options.ShouldInclude = description => description.GroupName == DocumentName);
        return services;
    }

    public static IEndpointRouteBuilder MapIdentityAdmin(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapOpenApi("/admin/api/openapi/{documentName}.json");
        var api = endpoints.MapGroup("/admin/api").WithGroupName(DocumentName).DisableAntiforgery()
            .RequireAuthorization(policy => policy
                .AddAuthenticationSchemes(IdentityModule.AdminScheme)
                .RequireAuthenticatedUser()
                // RFC 9068 §2.2.3 / RFC 8693 §4.2: the one space-delimited scope claim holds identity.admin.
                .RequireAssertion(context => ScopeClaims.HasScope(context.User, IncidentEndpoints.AdminScope)))
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .AddEndpointFilter(new RefusedAdminCalls("admin_api"))
            .AddEndpointFilter<AdminSecondFactor>();

        var users = api.MapGroup("/users").WithTags("Users");
        users.MapGet("/", ListUsersAsync).Produces<List<UserView>>()
            .WithSummary("Users the caller may view (their business unit scope), searched and paged by the database: q matches user name, display name or e-mail "
                + "(case-insensitive); kind = people | applications | all; status = any | active | disabled | locked; sort = user_name | display_name | email | "
                + "business_unit, order = asc | desc; offset and limit (1-500, default 100). X-Total-Count is how many matched; Link (RFC 8288) names the next and previous pages.");
        users.MapGet("/{id}", GetUserAsync).WithSummary("One user with roles, teams and status; the ETag is the version for If-Match.");
        users.MapPost("/", Body(http => Change<UserBody>(http, async (g, ops, b, ct) =>
        {
            var (id, problem) = await ops.CreateUserAsync(g, b, ct);
            return (problem, id is null ? null : TypedResults.Created($"/admin/api/users/{id}", new { id }));
        }))).Accepts<UserBody>("application/json").WithSummary("Create a user in a business unit (needs create on system_user covering it); an optional manager (a person the caller may view) needs assign there too. Audited as user.create.");
        users.MapPut("/{id}", (string id, HttpContext http) => Change<UserProfileBody>(http, (g, ops, b, ct) => ops.UpdateUserProfileAsync(g, id, b with { Version = b.Version ?? IfMatch(http) }, ct)))
            .Accepts<UserProfileBody>("application/json")
            .WithSummary("Change a user's display name and/or e-mail address (null leaves one as it is); If-Match (or version) is the ETag of GET, a stale one is 409. "
                + "Needs update on the user, never one's own; the address goes through the same validators as at creation. Audited as user.profile.");
        users.MapPost("/{id}/disable", (string id, HttpContext http) => Change(http, async (g, ops, ct) => (await ops.SetUserDisabledAsync(g, id, true, null, ct)).Problem))
            .WithSummary("Disable a user: every token, authorization and session of the user is revoked at once.");
        users.MapPost("/{id}/enable", (string id, HttpContext http) => Change(http, async (g, ops, ct) => (await ops.SetUserDisabledAsync(g, id, false, null, ct)).Problem));
        users.MapPost("/{id}/unlock", (string id, HttpContext http) => Change(http, (g, ops, ct) => ops.UnlockUserAsync(g, id, ct))).WithSummary("End a lockout after failed sign-ins.");
        users.MapPost("/{id}/reset-mfa", (string id, HttpContext http) => Change(http, (g, ops, ct) => ops.ResetMfaAsync(g, id, ct)))
            .WithSummary("Remove the authenticator and recovery codes; sessions end and the next sign-in enrols again.");
        users.MapPost("/{id}/password-reset-link", (string id, HttpContext http) => Change(http, async (g, ops, ct) =>
        {
            var services = http.RequestServices;
            var (sent, problem) = await ops.SendPasswordResetLinkAsync(g, id, services.GetRequiredService<CrmSecurity.Identity.Users.IAccountMail>(), services.GetRequiredService<CrmSecurity.Identity.Protocol.PublicOrigin>(),
                services.GetRequiredService<TimeProvider>(), services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Identity.DataProtectionTokenProviderOptions>>().Value.TokenLifespan, ct);
            return (problem, sent is null ? null : TypedResults.Ok(sent));
        })).Produces<PasswordResetLinkView>()
            .WithSummary("Mail the user a one-time, expiring password-reset link (the Forgot password machinery); the reply says where it went and until when, never the link.");
        users.MapPut("/{id}/business-unit", (string id, HttpContext http) => Change<NamesBody>(http, (g, ops, b, ct) => ops.SetUserBusinessUnitAsync(g, id, b with { Version = b.Version ?? IfMatch(http) }, ct)))
            .Accepts<NamesBody>("application/json");
        users.MapPut("/{id}/manager", (string id, HttpContext http) => Change<ManagerBody>(http, (g, ops, b, ct) => ops.SetUserManagerAsync(g, id, b with { Version = b.Version ?? IfMatch(http) }, ct)))
            .Accepts<ManagerBody>("application/json")
            .WithSummary("Set or clear (null or \"\") the user's manager: a user the caller may view, never a loop; needs assign on the user, never one's own. Audited as user.profile.");
        users.MapPut("/{id}/zoneinfo", (string id, HttpContext http) => Change<ZoneInfoBody>(http, (g, ops, b, ct) => ops.SetUserZoneInfoAsync(g, id, b with { Version = b.Version ?? IfMatch(http) }, ct)))
            .Accepts<ZoneInfoBody>("application/json").WithSummary("Set the user's time zone (IANA id, OpenID Connect zoneinfo); the analyzer judges working hours in it.");
        users.MapPut("/{id}/roles", (string id, HttpContext http) => Change<NamesBody>(http, (g, ops, b, ct) => ops.SetUserRolesAsync(g, id, b with { Version = b.Version ?? IfMatch(http) }, ct)))
            .Accepts<NamesBody>("application/json").WithSummary("Replace the user's direct roles (nobody edits their own; every added role must be held by the caller).");
        users.MapPut("/{id}/employment", (string id, HttpContext http) => Change<EmploymentBody>(http, (g, ops, b, ct) => ops.SetUserEmploymentAsync(g, id, b with { Version = b.Version ?? IfMatch(http) }, ct)))
            .Accepts<EmploymentBody>("application/json")
            .WithSummary("Set or clear the user's hire and termination dates (yyyy-MM-dd); the analyzer treats access after the termination date as a leaver's.");
        users.MapPut("/{id}/field-security-profiles", (string id, HttpContext http) => Change<NamesBody>(http, (g, ops, b, ct) => ops.SetUserFieldProfilesAsync(g, id, b with { Version = b.Version ?? IfMatch(http) }, ct)))
            .Accepts<NamesBody>("application/json").WithSummary("Replace the user's directly assigned field security profiles (nobody edits their own; every added profile's grants must be held by the caller).");
        users.MapPut("/{id}/teams", (string id, HttpContext http) => Change<NamesBody>(http, (g, ops, b, ct) => ops.SetUserTeamsAsync(g, id, b with { Version = b.Version ?? IfMatch(http) }, ct)))
            .Accepts<NamesBody>("application/json");

        var roles = api.MapGroup("/roles").WithTags("Roles");
        roles.MapGet("/", ListRolesAsync);
        roles.MapGet("/{id}", GetRoleAsync).WithSummary("A role with its privilege matrix (entity -> action -> depth); the ETag is the version.");
        roles.MapPost("/", Body(http => Change<RoleBody>(http, (g, ops, b, ct) => ops.CreateRoleAsync(g, b, ct), StatusCodes.Status201Created))).Accepts<RoleBody>("application/json");
        roles.MapPut("/{id}", (string id, HttpContext http) => Change<RoleBody>(http, (g, ops, b, ct) => ops.UpdateRoleAsync(g, id, b with { Version = b.Version ?? IntIfMatch(http) }, ct)))
            .Accepts<RoleBody>("application/json").WithSummary("Replace name, description and/or the privilege matrix.");
        roles.MapPut("/{id}/privileges/{entity}/{action}", (string id, string entity, string action, HttpContext http) =>
                Change<PrivilegeBody>(http, (g, ops, b, ct) => ops.SetPrivilegeAsync(g, id, entity, action, b.Depth, b.Version ?? IntIfMatch(http), ct)))
            .Accepts<PrivilegeBody>("application/json").WithSummary("Set one cell of the privilege grid.");
        roles.MapPut("/{id}/rows/{entity}", (string id, string entity, HttpContext http) =>
                Change<PrivilegeBody>(http, (g, ops, b, ct) => ops.SetPrivilegeLineAsync(g, id, entity, null, b.Depth, b.Version ?? IntIfMatch(http), ct)))
            .Accepts<PrivilegeBody>("application/json")
            .WithSummary("Set a whole row of the privilege grid (one entity, every action) to one depth: one change, one audit entry with the before and after of each cell it changed.");
        roles.MapPut("/{id}/columns/{action}", (string id, string action, HttpContext http) =>
                Change<PrivilegeBody>(http, (g, ops, b, ct) => ops.SetPrivilegeLineAsync(g, id, null, action, b.Depth, b.Version ?? IntIfMatch(http), ct)))
            .Accepts<PrivilegeBody>("application/json")
            .WithSummary("Set a whole column of the privilege grid (one action, every entity) to one depth: one change, one audit entry with the before and after of each cell it changed.");
        roles.MapPost("/{id}/clone", (string id, HttpContext http) => Change<RoleBody>(http, async (g, ops, b, ct) =>
        {
            var problem = await ops.CloneRoleAsync(g, id, b, ct);
            return (problem, problem is null ? TypedResults.Created($"/admin/api/roles/{b.Id}", new { id = b.Id }) : null);
        })).Accepts<RoleBody>("application/json")
            .WithSummary("Clone a role: a new role (id, name, optional description) with the source's privileges, audited as role.create naming the source.");
        roles.MapDelete("/{id}", (string id, HttpContext http) => Change(http, (g, ops, ct) => ops.DeleteRoleAsync(g, id, ct))).WithSummary("Delete a role that no user or team holds.");

        var units = api.MapGroup("/business-units").WithTags("Business units");
        units.MapGet("/", ListBusinessUnitsAsync)
            .WithSummary("The business units the caller may view, each with its parent (null for the root), version and how many child units, users and teams it holds.");
        units.MapPost("/", Body(http => Change<BusinessUnitBody>(http, (g, ops, b, ct) => ops.CreateBusinessUnitAsync(g, b, ct), StatusCodes.Status201Created))).Accepts<BusinessUnitBody>("application/json")
            .WithSummary("Create a unit under a parent (default: the root); needs create on business_unit covering the parent. Names are unique.");
        units.MapPut("/{id}", (string id, HttpContext http) => Change<BusinessUnitBody>(http, (g, ops, b, ct) => ops.UpdateBusinessUnitAsync(g, id, b with { Version = b.Version ?? IntIfMatch(http) }, ct)))
            .Accepts<BusinessUnitBody>("application/json")
            .WithSummary("Rename or move a unit: the root never moves, a unit never moves under itself or its descendants, and the caller needs update covering the unit and its new parent.");
        units.MapDelete("/{id}", (string id, HttpContext http) => Change(http, (g, ops, ct) => ops.DeleteBusinessUnitAsync(g, id, IntIfMatch(http), ct)))
            .WithSummary("Delete an empty unit: refused for the root and while child units, users, teams or record shares are bound to it; If-Match checks the version.");

        var teams = api.MapGroup("/teams").WithTags("Teams");
        teams.MapGet("/", ListTeamsAsync).Produces<List<TeamView>>().WithSummary("Teams in business units where the caller may read teams, with members, roles and field security profiles.");
        teams.MapGet("/{id}", GetTeamAsync).Produces<TeamView>().WithSummary("One team; the ETag is the version for If-Match.");
        teams.MapPost("/", Body(http => Change<TeamBody>(http, (g, ops, b, ct) => ops.CreateTeamAsync(g, b, ct), StatusCodes.Status201Created))).Accepts<TeamBody>("application/json")
            .WithSummary("Create a team (id, name, owning business_unit, optional roles and members); needs create on team covering the unit. Names are unique.");
        teams.MapPut("/{id}", (string id, HttpContext http) => Change<TeamBody>(http, (g, ops, b, ct) => ops.RenameTeamAsync(g, id, b with { Version = b.Version ?? IntIfMatch(http) }, ct)))
            .Accepts<TeamBody>("application/json").WithSummary("Rename a team (name); needs update on team covering its unit. Audited as team.update.");
        teams.MapPut("/{id}/members", (string id, HttpContext http) => Change<TeamBody>(http, (g, ops, b, ct) => ops.SetTeamMembersAsync(g, id, b.Members ?? [], b.Version ?? IntIfMatch(http), ct)))
            .Accepts<TeamBody>("application/json")
            .WithSummary("Replace the team's members (user ids): each added or removed user must be one the caller may view and assign, never the caller; added members get the team's roles and profiles, so the caller must hold them. Audited as team.members.");
        teams.MapPost("/{id}/members/{userId}", (string id, string userId, HttpContext http) => Change(http, (g, ops, ct) => ops.ChangeTeamMembersAsync(g, id, [userId], [], IntIfMatch(http), "user", null, ct)))
            .WithSummary("Add one member (the same rules as replacing the members).");
        teams.MapDelete("/{id}/members/{userId}", (string id, string userId, HttpContext http) => Change(http, (g, ops, ct) => ops.ChangeTeamMembersAsync(g, id, [], [userId], IntIfMatch(http), "user", null, ct)))
            .WithSummary("Remove one member (the same rules as replacing the members).");
        teams.MapPut("/{id}/roles", (string id, HttpContext http) => Change<TeamBody>(http, (g, ops, b, ct) => ops.SetTeamRolesAsync(g, id, b with { Version = b.Version ?? IntIfMatch(http) }, ct)))
            .Accepts<TeamBody>("application/json");
        teams.MapPut("/{id}/field-security-profiles", (string id, HttpContext http) => Change<TeamBody>(http, (g, ops, b, ct) => ops.SetTeamFieldProfilesAsync(g, id, b with { Version = b.Version ?? IntIfMatch(http) }, ct)))
            .Accepts<TeamBody>("application/json").WithSummary("Replace the team's field security profiles (its members hold them).");
        teams.MapDelete("/{id}", (string id, HttpContext http) => Change(http, (g, ops, ct) => ops.DeleteTeamAsync(g, id, ct)))
            .WithSummary("Delete a team: its memberships, roles, profiles and the record shares to it go with it; needs delete on team covering its unit.");

        var profiles = api.MapGroup("/field-security-profiles").WithTags("Field security profiles");
        profiles.MapGet("/", ListProfilesAsync);
        profiles.MapPost("/", Body(http => Change<FieldProfileBody>(http, (g, ops, b, ct) => ops.CreateFieldProfileAsync(g, b, ct), StatusCodes.Status201Created)))
            .Accepts<FieldProfileBody>("application/json").WithSummary("Create a field security profile (id, name, description, optional grants).");
        profiles.MapDelete("/{id}", (string id, [FromQuery(Name = "remove_assignments")] bool? removeAssignments, HttpContext http) =>
                Change(http, (g, ops, ct) => ops.DeleteFieldProfileAsync(g, id, removeAssignments ?? false, ct)))
            .WithSummary("Delete a field security profile. Still assigned: 409 naming the holders, unless remove_assignments=true removes the assignments with it.");
        profiles.MapPut("/{id}", (string id, HttpContext http) => Change<FieldProfileBody>(http, (g, ops, b, ct) => ops.UpdateFieldProfileAsync(g, id, b with { Version = b.Version ?? IntIfMatch(http) }, ct)))
            .Accepts<FieldProfileBody>("application/json").WithSummary("Set grants per (entity, field): none, read, read_unmasked, update.");

        var shares = api.MapGroup("/shares").WithTags("Shares");
        shares.MapGet("/", ListShares).WithSummary("Record shares the caller could revoke, filtered by user (id or name; shares to the user and their teams) and entity.");
        shares.MapPost("/", Body(http => Change<ShareBody>(http, async (g, ops, b, ct) =>
        {
            var (id, problem) = await ops.CreateShareAsync(g, b, ct);
            return (problem, id is null ? null : TypedResults.Created($"/admin/api/shares/{id}", new { id }));
        }))).Accepts<ShareBody>("application/json");
        shares.MapDelete("/{id}", (string id, HttpContext http) => Change(http, (g, ops, ct) => ops.DeleteShareAsync(g, id, ct)));

        var clients = api.MapGroup("/clients").WithTags("OIDC clients");
        clients.MapGet("/", ListClientsAsync).WithSummary("Every OIDC client: registration, and managed_by (configuration: Identity:Clients, refused for edits; admin: made at run time).");
        clients.MapGet("/{id}", GetClientAsync).WithSummary("One client; the ETag is the version for If-Match.");
        clients.MapPost("/", Body(http => Change<ClientBody>(http, async (g, ops, b, ct) =>
        {
            var (created, problem) = await ops.CreateClientAsync(g, b, ct);
            return (problem, created is null ? null : TypedResults.Created($"/admin/api/clients/{created.ClientId}", created));
        }))).Accepts<ClientBody>("application/json").Produces<ClientSecretView>(StatusCodes.Status201Created)
            .WithSummary("Register a client (confidential or public; grants, scopes, redirect URIs, first or third party, PAR). A confidential client's secret is in this reply only.");
        clients.MapPut("/{id}", (string id, HttpContext http) => Change<ClientBody>(http, (g, ops, b, ct) => ops.UpdateClientAsync(g, id, b with { Version = b.Version ?? IfMatch(http) }, ct)))
            .Accepts<ClientBody>("application/json").WithSummary("Change a run-time client's registration (fields left out keep their value; client_id and client_type stay).");
        clients.MapPost("/{id}/secrets", (string id, HttpContext http) => Change<SecretRotationBody>(http, async (g, ops, b, ct) =>
        {
            var (rotated, problem) = await ops.RotateClientSecretAsync(g, id, b with { Version = b.Version ?? IfMatch(http) }, ct);
            return (problem, rotated is null ? null : TypedResults.Ok(rotated));
        })).Accepts<SecretRotationBody>("application/json").Produces<ClientSecretView>()
            .WithSummary("Rotate a confidential client's secret: the new one is in this reply only; the old one keeps working for the overlap (0, 30m, 12h, 1d; default 1d).");
        clients.MapDelete("/{id}", (string id, HttpContext http) => Change(http, async (g, ops, ct) =>
        {
            var (revoked, problem) = await ops.DeleteClientAsync(g, id, IfMatch(http), ct);
            return (problem, problem is not null ? null : TypedResults.Ok(new ClientRevocationView(id, revoked?.TokensRevoked ?? 0, revoked?.AuthorizationsRevoked ?? 0)));
        })).Produces<ClientRevocationView>().WithSummary("Delete a run-time client: every token it holds is revoked first.");
        clients.MapPost("/{id}/revoke", (string id, HttpContext http) => Change(http, async (g, ops, ct) =>
        {
            var (summary, problem) = await ops.RevokeClientAsync(g, id, null, ct);
            return (problem, summary is null ? null : TypedResults.Ok(new ClientRevocationView(summary.Value, summary.TokensRevoked, summary.AuthorizationsRevoked)));
        })).Produces<ClientRevocationView>()
            .WithSummary("Incident response: revoke every token and authorization of a client and keep the client; the reply counts what was revoked.");

        api.MapGet("/policies", ExportPolicies).WithTags("Policies")
            .WithSummary("Organisation, business units, roles and field security profiles as one document in the format of policies/authorization: review it, or seed another installation with it.");
        api.MapGet("/who-can-access", WhoCanAccessAsync).WithTags("Who can access")
            .WithSummary("For an entity and action, a field, or one record: the users who can, each with the path that grants it.");

        var audit = api.MapGroup("/audit").WithTags("Audit trail");
        audit.MapGet("/", ListAuditAsync)
            .WithSummary("Audit entries in sequence order, filtered by actor, action, target_kind, target, from and to (ISO 8601); page with after (the previous page's next_after) and limit (1-200).");
        audit.MapGet("/export", ExportAudit).Produces(StatusCodes.Status200OK, contentType: "application/jsonl")
            .WithSummary("Every entry the same filters match, one JSON object per line (JSON Lines); needs export on audit_trail.");
        audit.MapGet("/verify", VerifyAuditAsync).WithSummary("Whether the keyed hash chain is intact, or the first entry that is not what was written.");
        return endpoints;
    }

    // ---- reads --------------------------------------------------------------------------------------------------

    private static async Task<IResult> ListUsersAsync(HttpContext http, IdentityStore store, TimeProvider time,
        [FromQuery] string? q, [FromQuery] string? kind, [FromQuery] string? status, [FromQuery] string? sort, [FromQuery] string? order,
        [FromQuery] string? offset, [FromQuery] string? limit)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        var (query, bad) = UserQuery.Parse(name => name switch
        {
            "q" => q, "kind" => kind, "status" => status, "sort" => sort, "order" => order, "offset" => offset, "limit" => limit, _ => null,
        });
        if (bad is not null)
        {
            return Problem(bad);
        }

        var (page, problem) = await AdminOperations.SearchUsersAsync(guard, store, query!, time.GetUtcNow(), http.RequestAborted);
        if (problem is not null)
        {
            return Problem(problem);
        }

        http.Response.Headers["X-Total-Count"] = page!.Total.ToString(CultureInfo.InvariantCulture);
        var links = new List<string>();
        if (page.NextOffset is { } next)
        {
            links.Add($"<{UsersLink(http, next)}>; rel=\"next\"");
        }

        if (page.PreviousOffset is { } previous)
        {
            links.Add($"<{UsersLink(http, previous)}>; rel=\"prev\"");
        }

        if (links.Count > 0)
        {
            http.Response.Headers[HeaderNames.Link] = string.Join(", ", links);
        }

        return TypedResults.Ok(page.Users);
    }

    /// <summary>The same search at another offset (RFC 8288 link target, relative to the API root).</summary>
    private static string UsersLink(HttpContext http, int offset)
    {
        var query = http.Request.Query.Where(p => p.Key != "offset").SelectMany(p => p.Value.Select(v => $"{Uri.EscapeDataString(p.Key)}={Uri.EscapeDataString(v ?? "")}"))
            .Append($"offset={offset.ToString(CultureInfo.InvariantCulture)}");
        return "/admin/api/users?" + string.Join("&", query);
    }

    private static async Task<IResult> GetTeamAsync(string id, HttpContext http, IdentityStore store)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        var snapshot = guard.Snapshot;
        var index = snapshot.TeamIndex(id);
        if (index < 0)
        {
            return Problem(AdminProblem.NotFound("team", id));
        }

        var team = snapshot.Teams[index];
        if (guard.Require(SystemEntities.Team, CrmAction.Read, snapshot.BusinessUnits[team.BusinessUnit].Id) is { } denied)
        {
            return Problem(denied);
        }

        var version = await store.Teams.AsNoTracking().Where(t => t.Id == id).Select(t => t.Version).SingleOrDefaultAsync(http.RequestAborted);
        http.Response.Headers.ETag = $"\"{version.ToString(CultureInfo.InvariantCulture)}\"";
        return TypedResults.Ok(AdminOperations.View(snapshot, team, version));
    }

    private static async Task<IResult> GetUserAsync(string id, HttpContext http, IdentityStore store, TimeProvider time)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        var user = await store.Users.AsNoTracking().SingleOrDefaultAsync(u => u.Id == id, http.RequestAborted);
        if (user is null)
        {
            return Problem(AdminProblem.NotFound("user", id));
        }

        if (guard.Require(SystemEntities.User, CrmAction.Read, user.BusinessUnit) is { } denied)
        {
            return Problem(denied);
        }

        var view = AdminOperations.View(guard.Snapshot, user, time.GetUtcNow());
        http.Response.Headers.ETag = new EntityTagHeaderValue($"\"{view.Version}\"").ToString();
        return TypedResults.Ok(view);
    }

    private static IResult ExportPolicies(HttpContext http)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        // Roles and profiles are what the document mostly holds: viewing them is the right to export them.
        if ((guard.Require(SystemEntities.Role, CrmAction.Read) ?? guard.Require(SystemEntities.FieldProfile, CrmAction.Read)) is { } denied)
        {
            return Problem(denied);
        }

        return TypedResults.Text(PolicyFiles.Export(guard.Snapshot), "application/json");
    }

    private static async Task<IResult> ListRolesAsync(HttpContext http, IdentityStore store)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        if (guard.Require(SystemEntities.Role, CrmAction.Read) is { } denied)
        {
            return Problem(denied);
        }

        var versions = await store.CrmRoles.AsNoTracking().ToDictionaryAsync(r => r.Id, r => r.Version, http.RequestAborted);
        return TypedResults.Ok(guard.Snapshot.Roles.Select(r => AdminOperations.View(guard.Snapshot, r, versions.GetValueOrDefault(r.Id))).ToList());
    }

    private static async Task<IResult> GetRoleAsync(string id, HttpContext http, IdentityStore store)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        if (guard.Require(SystemEntities.Role, CrmAction.Read) is { } denied)
        {
            return Problem(denied);
        }

        var index = guard.Snapshot.RoleIndex(id);
        if (index < 0)
        {
            return Problem(AdminProblem.NotFound("role", id));
        }

        var version = await store.CrmRoles.AsNoTracking().Where(r => r.Id == id).Select(r => r.Version).SingleOrDefaultAsync(http.RequestAborted);
        http.Response.Headers.ETag = $"\"{version.ToString(CultureInfo.InvariantCulture)}\"";
        return TypedResults.Ok(AdminOperations.View(guard.Snapshot, guard.Snapshot.Roles[index], version));
    }

    private static async Task<IResult> ListBusinessUnitsAsync(HttpContext http, IdentityStore store)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        if (guard.Require(SystemEntities.BusinessUnit, CrmAction.Read) is { } denied)
        {
            return Problem(denied);
        }

        var versions = await store.BusinessUnits.AsNoTracking().ToDictionaryAsync(b => b.Id, b => b.Version, http.RequestAborted);
        return TypedResults.Ok(AdminOperations.BusinessUnitTree(guard, versions).Select(n => n.View).ToList());
    }

    private static async Task<IResult> ListTeamsAsync(HttpContext http, IdentityStore store)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        if (guard.Require(SystemEntities.Team, CrmAction.Read) is { } denied)
        {
            return Problem(denied);
        }

        var snapshot = guard.Snapshot;
        var versions = await store.Teams.AsNoTracking().ToDictionaryAsync(t => t.Id, t => t.Version, http.RequestAborted);
        return TypedResults.Ok(snapshot.Teams
            .Where(t => guard.Covers(SystemEntities.Team, CrmAction.Read, snapshot.BusinessUnits[t.BusinessUnit].Id))
            .Select(t => AdminOperations.View(snapshot, t, versions.GetValueOrDefault(t.Id)))
            .ToList());
    }

    private static async Task<IResult> ListProfilesAsync(HttpContext http, IdentityStore store)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        if (guard.Require(SystemEntities.FieldProfile, CrmAction.Read) is { } denied)
        {
            return Problem(denied);
        }

        var versions = await store.FieldProfiles.AsNoTracking().ToDictionaryAsync(p => p.Id, p => p.Version, http.RequestAborted);
        return TypedResults.Ok(guard.Snapshot.Profiles.Select(p => AdminOperations.View(guard.Snapshot, p, versions.GetValueOrDefault(p.Id))).ToList());
    }

    private static IResult ListShares(HttpContext http, [FromQuery] string? user, [FromQuery] string? entity)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        var (list, problem) = AdminOperations.ListShares(guard, user, entity);
        return problem is not null ? Problem(problem) : TypedResults.Ok(list);
    }

    private static async Task<IResult> ListClientsAsync(HttpContext http, AdminOperations operations)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        if (guard.Require(SystemEntities.Client, CrmAction.Read) is { } denied)
        {
            return Problem(denied);
        }

        return TypedResults.Ok(await operations.ListClientsAsync(http.RequestAborted));
    }

    private static async Task<IResult> GetClientAsync(string id, HttpContext http, AdminOperations operations)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        if (guard.Require(SystemEntities.Client, CrmAction.Read) is { } denied)
        {
            return Problem(denied);
        }

        if (await operations.GetClientAsync(id, http.RequestAborted) is not { } client)
        {
            return Problem(AdminProblem.NotFound("client", id));
        }

        http.Response.Headers.ETag = new EntityTagHeaderValue($"\"{client.Version}\"").ToString();
        return TypedResults.Ok(client);
    }

    private static IResult WhoCanAccessAsync(HttpContext http, [FromQuery] string? entity, [FromQuery] string? action, [FromQuery] string? field,
        [FromQuery(Name = "record_id")] string? recordId, [FromQuery] string? owner, [FromQuery(Name = "business_unit")] string? businessUnit)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        var (view, problem) = WhoCanAccess(guard, entity, action, field, recordId, owner, businessUnit);
        return problem is not null ? Problem(problem) : TypedResults.Ok(view);
    }

    /// <summary>Who can access, limited to the users the caller may view (a business-unit admin sees their unit's users).</summary>
    public static (WhoCanAccessView? View, AdminProblem? Problem) WhoCanAccess(AdminGuard guard, string? entity, string? action, string? field, string? recordId, string? owner, string? businessUnit)
    {
        if (guard.Require(SystemEntities.User, CrmAction.Read) is { } denied)
        {
            return (null, denied);
        }

        var snapshot = guard.Snapshot;
        var info = entity is null ? null : snapshot.Entity(entity);
        if (info is null || info.IsSystem)
        {
            return (null, AdminProblem.Invalid("entity", $"unknown entity '{entity}'."));
        }

        var actionName = action ?? "read";
        if (!CrmNames.TryParseAction(actionName, out var parsed))
        {
            return (null, AdminProblem.Invalid("action", $"unknown action '{actionName}' (use one of {CrmNames.ActionList})."));
        }

        IReadOnlyList<AccessGrant> grants;
        if (!string.IsNullOrEmpty(field))
        {
            if (!info.FieldIndex.TryGetValue(field, out var fieldIndex))
            {
                return (null, AdminProblem.Invalid("field", $"unknown field '{field}' of entity '{info.Name}'."));
            }

            grants = snapshot.WhoCanAccessField(fieldIndex);
        }
        else if (!string.IsNullOrEmpty(recordId))
        {
            if (businessUnit is null || snapshot.BusinessUnitIndex(businessUnit) < 0)
            {
                return (null, AdminProblem.Invalid("business_unit", businessUnit is null ? "business_unit (of the record) is required with record_id." : $"unknown business unit '{businessUnit}'."));
            }

            grants = snapshot.WhoCanAccessRecord(info.Index, parsed, new RecordRef(recordId, owner, PrincipalKind.User, businessUnit));
        }
        else
        {
            grants = snapshot.WhoCanAccessEntity(info.Index, parsed);
        }

        var users = grants
            .Where(g => guard.Covers(SystemEntities.User, CrmAction.Read, snapshot.BusinessUnits[g.User.BusinessUnit].Id))
            .Select(g => new WhoCanAccessUser(g.User.Id, g.User.UserName, g.Access, [.. g.Paths.Select(p => p.Text)]))
            .ToList();
        return (new WhoCanAccessView(info.Name, string.IsNullOrEmpty(field) ? parsed.Name() : null, string.IsNullOrEmpty(field) ? null : field, recordId, users), null);
    }

    // ---- the audit trail -----------------------------------------------------------------------------------------

    private static async Task<IResult> ListAuditAsync(HttpContext http, AuditTrailViewer viewer)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        var (filter, bad) = AuditTrailFilter.Parse(name => QueryValue(http, name));
        if (bad is not null)
        {
            return Problem(bad);
        }

        var (page, problem) = await viewer.ListAsync(guard, filter!, http.RequestAborted);
        return problem is not null ? Problem(problem) : TypedResults.Ok(page);
    }

    private static async Task<IResult> ExportAudit(HttpContext http, AuditTrailViewer viewer)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        var (filter, bad) = AuditTrailFilter.Parse(name => QueryValue(http, name));
        if (bad is not null)
        {
            return Problem(bad);
        }

        var (entries, problem) = await viewer.ExportAsync(guard, filter!, http.RequestAborted);
        return problem is not null
            ? Problem(problem)
            : TypedResults.Stream(body => AuditTrailViewer.WriteLinesAsync(body, entries!, http.RequestAborted), AuditTrailViewer.JsonLines, AuditTrailViewer.ExportFileName);
    }

    private static async Task<IResult> VerifyAuditAsync(HttpContext http, AuditTrailViewer viewer)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        var (check, problem) = await viewer.VerifyAsync(guard, http.RequestAborted);
        return problem is not null ? Problem(problem) : TypedResults.Ok(new AuditVerifyView(check!.Intact, check.Entries, check.Head, check.FirstBroken, check.Problem));
    }

    /// <summary>One query value; a parameter given twice stays both values joined by a comma, never silently one of them.</summary>
    private static string? QueryValue(HttpContext http, string name) =>
        http.Request.Query.TryGetValue(name, out var values) ? values.ToString() : null;

    // ---- plumbing -----------------------------------------------------------------------------------------------

    private static ProblemHttpResult? Guard(HttpContext http, out AdminGuard guard)
    {
        var model = http.RequestServices.GetRequiredService<AuthorizationModel>();
        guard = AdminGuard.For(model.Current, http.User, http.Connection.RemoteIpAddress?.ToString())!;
        return guard is null
            ? Problem(AdminProblem.Forbidden("The token's subject is not an enabled user or application user of the model; admin permissions come from its roles."))
            : null;
    }

    private static Task<IResult> Change(HttpContext http, Func<AdminGuard, AdminOperations, CancellationToken, Task<AdminProblem?>> change) =>
        Change(http, async (g, ops, ct) => (await change(g, ops, ct), (IResult?)null));

    private static async Task<IResult> Change(HttpContext http, Func<AdminGuard, AdminOperations, CancellationToken, Task<(AdminProblem? Problem, IResult? Result)>> change)
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        var (problem, result) = await change(guard, http.RequestServices.GetRequiredService<AdminOperations>(), http.RequestAborted);
        return problem is not null ? Problem(problem) : result ?? TypedResults.NoContent();
    }

    private static Task<IResult> Change<TBody>(HttpContext http, Func<AdminGuard, AdminOperations, TBody, CancellationToken, Task<AdminProblem?>> change, int status = StatusCodes.Status204NoContent)
        where TBody : class =>
        Change<TBody>(http, async (g, ops, b, ct) => (await change(g, ops, b, ct), status == StatusCodes.Status201Created ? TypedResults.StatusCode(status) : null));

    private static async Task<IResult> Change<TBody>(HttpContext http, Func<AdminGuard, AdminOperations, TBody, CancellationToken, Task<(AdminProblem? Problem, IResult? Result)>> change)
        where TBody : class
    {
        if (Guard(http, out var guard) is { } refused)
        {
            return refused;
        }

        // Size limit (413), media type (415) and JSON errors naming the path (400) before anything is touched.
        var (body, bad) = await JsonBody.ReadAsync<TBody>(http);
        if (bad is not null)
        {
            return bad;
        }

        var (problem, result) = await change(guard, http.RequestServices.GetRequiredService<AdminOperations>(), body!, http.RequestAborted);
        return problem is not null ? Problem(problem) : result ?? TypedResults.NoContent();
    }

    /// <summary>A handler that reads its own body: typed as a route handler so its result is written (ASP0016).</summary>
    private static Delegate Body(Func<HttpContext, Task<IResult>> handler) => handler;

    private static ProblemHttpResult Problem(AdminProblem problem) => TypedResults.Problem(problem.ToProblemDetails());

    /// <summary>RFC 9110 §13.1.1 If-Match: the version the client last read (the ETag of the GET).</summary>
    private static string? IfMatch(HttpContext http) =>
        http.Request.Headers.IfMatch.ToString() is { Length: > 0 } value ? value.Replace("W/", "", StringComparison.Ordinal).Trim().Trim('"') : null;

    private static int? IntIfMatch(HttpContext http) =>
        IfMatch(http) is { } value && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : null;
}
