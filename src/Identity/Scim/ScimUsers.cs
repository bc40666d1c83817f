using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Scim;

/// <summary>
/// <c>/scim/v2/Users</c>: people as SCIM User resources (RFC 7643 §4.1) with the enterprise extension (§4.3: department,
/// manager) and this service's extension (business unit). Reads show only the users the caller's application user may view
/// (its business units); every write is one or more of the admin API's audited operations.
/// </summary>
internal static class ScimUsers
{
    /// <summary>The state a SCIM client asks for: what a POST, a PUT or a PATCHed resource says.</summary>
    private sealed record Wanted(
        string UserName, string? DisplayName, string? Email, string? ExternalId, string? Department, string? Manager,
        bool? Active, List<string>? Roles, string? BusinessUnit, string? Password);

    public static async Task<IResult> ListAsync(ScimCall scim)
    {
        var (users, meta) = await LoadAsync(scim, null);
        return ScimEndpoints.Json(scim.Http, scim.Page([.. users.Select(u => Resource(scim, u, meta))]));
    }

    public static async Task<IResult> GetAsync(ScimCall scim, string id)
    {
        var (user, meta) = await FindAsync(scim, id);
        return ScimEndpoints.Json(scim.Http, Resource(scim, user, meta));
    }

    /// <summary>RFC 7644 §3.3: 201 with the resource as stored, its location and version.</summary>
    public static async Task<IResult> CreateAsync(ScimCall scim)
    {
        var body = await scim.BodyAsync();
        var wanted = Read(body, requireUserName: true);
        var snapshot = scim.Guard.Snapshot;
        var unit = wanted.BusinessUnit ?? snapshot.BusinessUnits[scim.Guard.CallerInfo.BusinessUnit].Id;

        // Checked before anything is created, so a refused role leaves no half-provisioned user behind (Dynamics 365
        // privilege escalation rule: nobody grants what they do not hold).
        RequireGrantable(scim, wanted.Roles ?? []);

        string? id = null;
        await scim.Apply(async (guard, ops, ct) =>
        {
            var (created, problem) = await ops.CreateUserAsync(guard, new UserBody(wanted.UserName, wanted.DisplayName, wanted.Email, unit, wanted.Password, null), ct);
            id = created;
            return problem;
        });

        var user = await LoadUserAsync(scim, id!);
        await ChangeAsync(scim, user, Current(scim, user), wanted with { BusinessUnit = null, Password = null });
        var (stored, meta) = await FindAsync(scim, id!);
        var resource = Resource(scim, stored, meta);
        return ScimEndpoints.Json(scim.Http, resource, StatusCodes.Status201Created, Location(scim, id!));
    }

    /// <summary>RFC 7644 §3.5.1 (PUT, the whole resource) and §3.5.2 (PATCH, applied to the current resource).</summary>
    public static async Task<IResult> ReplaceAsync(ScimCall scim, string id, bool patch)
    {
        var (user, meta) = await FindAsync(scim, id);
        var current = Resource(scim, user, meta);
        scim.RequireVersion(Version(user));
        var body = await scim.BodyAsync();
        var desired = patch ? ScimPatch.Apply(current, body) : body;
        if (!patch && ScimFilterEvaluator.Get(body, "id") is JsonValue given && given.GetValue<string>() != id)
        {
            // RFC 7643 §3.1: id is readOnly and assigned by the service provider.
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.Mutability, "id is assigned by the service and cannot be changed.");
        }

        var wanted = Read(desired, requireUserName: true);
        await ChangeAsync(scim, user, Current(scim, user), wanted);
        var (stored, after) = await FindAsync(scim, id);
        return ScimEndpoints.Json(scim.Http, Resource(scim, stored, after));
    }

    /// <summary>
    /// RFC 7644 §3.6 DELETE deprovisions: the user is disabled (every token, authorization and session revoked in the same
    /// audited change) and given a termination date, and SCIM answers 404 for them from then on. The row stays: the audit
    /// trail, access events and findings name the person, and an auditor must still see who they were (design.md).
    /// </summary>
    public static async Task<IResult> DeleteAsync(ScimCall scim, string id)
    {
        var (user, _) = await FindAsync(scim, id);
        scim.RequireVersion(Version(user));
        await scim.Apply(async (guard, ops, ct) => (await ops.SetUserDisabledAsync(guard, id, true, $"deprovisioned through SCIM by client {scim.ClientId}", ct)).Problem);
        var today = DateOnly.FromDateTime(scim.Http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow().UtcDateTime);
        var hired = user.Hired?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var terminated = (user.Terminated ?? (user.Hired is { } h && h > today ? h : today)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        await scim.Apply((guard, ops, ct) => ops.SetUserEmploymentAsync(guard, id, new EmploymentBody(hired, terminated, null), ct));
        return Results.NoContent();
    }

    /// <summary>Brings the user to the wanted state, one audited operation per kind of change; nothing unchanged is touched.</summary>
    private static async Task ChangeAsync(ScimCall scim, CrmUser user, Wanted current, Wanted wanted)
    {
        var id = user.Id;
        if (wanted.Password is { Length: > 0 })
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.Mutability, "password can be given only when the user is created; the person changes it themselves (or an admin resets it in the console).");
        }

        if (wanted.Roles is { } roles)
        {
            RequireGrantable(scim, roles.Except(current.Roles ?? []).ToList());
        }

        var profile = new ProfileBody(
            Changed(current.UserName, wanted.UserName),
            Changed(current.DisplayName, wanted.DisplayName ?? wanted.UserName),
            Changed(current.Email, wanted.Email) ?? (current.Email is not null && wanted.Email is null ? "" : null),
            Changed(current.ExternalId, wanted.ExternalId) ?? (current.ExternalId is not null && wanted.ExternalId is null ? "" : null),
            Changed(current.Department, wanted.Department) ?? (current.Department is not null && wanted.Department is null ? "" : null),
            Changed(current.Manager, wanted.Manager) ?? (current.Manager is not null && wanted.Manager is null ? "" : null));
        if (profile != new ProfileBody(null, null, null, null, null, null))
        {
            await scim.Apply((guard, ops, ct) => ops.SetUserProfileAsync(guard, id, profile, ct));
        }

        if (wanted.BusinessUnit is { } unit && unit != current.BusinessUnit)
        {
            await scim.Apply((guard, ops, ct) => ops.SetUserBusinessUnitAsync(guard, id, new NamesBody(null, null, unit, null, null), ct));
        }

        if (wanted.Roles is { } wantedRoles && !wantedRoles.Order(StringComparer.Ordinal).SequenceEqual((current.Roles ?? []).Order(StringComparer.Ordinal)))
        {
            await scim.Apply((guard, ops, ct) => ops.SetUserRolesAsync(guard, id, new NamesBody(wantedRoles, null, null, null, null), ct));
        }

        if (wanted.Active is { } active && active != current.Active)
        {
            // Deactivation revokes every token, authorization and session of the user in the same audited change.
            await scim.Apply(async (guard, ops, ct) => (await ops.SetUserDisabledAsync(guard, id, !active, $"{(active ? "activated" : "deactivated")} through SCIM by client {scim.ClientId}", ct)).Problem);
        }

        static string? Changed(string? before, string? after) => after is not null && !string.Equals(before, after, StringComparison.Ordinal) ? after : null;
    }

    /// <summary>Every role named exists and is held in full by the caller (Dynamics 365 privilege escalation rule).</summary>
    private static void RequireGrantable(ScimCall scim, List<string> roles)
    {
        var snapshot = scim.Guard.Snapshot;
        foreach (var role in roles)
        {
            var index = snapshot.RoleIndex(role);
            if (index < 0)
            {
                throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, $"roles: unknown role '{role}'.");
            }

            if (scim.Guard.RequireHolds(snapshot.Roles[index]) is { } refused)
            {
                throw ScimCall.ToScim(refused);
            }
        }
    }

    private static Wanted Current(ScimCall scim, CrmUser user)
    {
        var info = scim.Guard.Snapshot.User(user.Id);
        return new Wanted(user.UserName!, user.DisplayName, user.Email, user.ExternalId, user.Department, user.ManagerId, !user.IsDisabled,
            info is null ? [] : [.. info.DirectRoles.Select(r => scim.Guard.Snapshot.Roles[r].Id)], user.BusinessUnit, null);
    }

    /// <summary>The wanted state from a User resource; attributes the service does not keep are ignored (RFC 7644 §3.3).</summary>
    private static Wanted Read(JsonObject body, bool requireUserName)
    {
        if (!ScimPatch.Schemas(body).Contains(ScimSchemas.User, StringComparer.OrdinalIgnoreCase))
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidSyntax, $"schemas must include \"{ScimSchemas.User}\".");
        }

        var userName = Text(body, "userName");
        if (requireUserName && string.IsNullOrWhiteSpace(userName))
        {
            // RFC 7643 §4.1.1: userName is required.
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, "userName is required.");
        }

        var name = ScimFilterEvaluator.Get(body, "name") as JsonObject;
        var given = name is null ? "" : string.Join(' ', new[] { Text(name, "givenName"), Text(name, "familyName") }.Where(p => !string.IsNullOrWhiteSpace(p)));
        var displayName = Text(body, "displayName") ?? (name is null ? null : Text(name, "formatted")) ?? (given.Length > 0 ? given : null);

        string? email = null;
        if (ScimFilterEvaluator.Get(body, "emails") is JsonArray emails)
        {
            // RFC 7643 §2.4: the primary value, else the first; this service keeps one address per person.
            var chosen = emails.OfType<JsonObject>().FirstOrDefault(e => ScimFilterEvaluator.Get(e, "primary") is JsonValue p && Bool(p) == true)
                ?? emails.OfType<JsonObject>().FirstOrDefault();
            email = chosen is null ? null : Text(chosen, "value");
        }

        var enterprise = ScimFilterEvaluator.Get(body, ScimSchemas.EnterpriseUser) as JsonObject;
        var manager = enterprise is null ? null : ScimFilterEvaluator.Get(enterprise, "manager") switch
        {
            JsonObject m => Text(m, "value"),
            // Entra sends the manager's id as a bare string.
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            _ => null,
        };

        List<string>? roles = null;
        if (ScimFilterEvaluator.TryGet(body, "roles", out var rolesNode))
        {
            roles = rolesNode is JsonArray list
                ? [.. list.Select(r => r is JsonObject o ? Text(o, "value") : r is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null).OfType<string>().Distinct(StringComparer.Ordinal)]
                : rolesNode is null ? [] : throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, "roles must be an array of {\"value\": role id}.");
        }

        bool? active = null;
        if (ScimFilterEvaluator.Get(body, "active") is JsonValue activeValue)
        {
            active = Bool(activeValue) ?? throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, "active must be true or false.");
        }

        var crm = ScimFilterEvaluator.Get(body, ScimSchemas.CrmUser) as JsonObject;
        return new Wanted(userName?.Trim() ?? "", displayName, email, Text(body, "externalId"), enterprise is null ? null : Text(enterprise, "department"), manager,
            active, roles, crm is null ? null : Text(crm, "businessUnit"), Text(body, "password"));
    }

    /// <summary>A boolean, or Entra's "True"/"False" strings.</summary>
    private static bool? Bool(JsonValue value) => value.GetValueKind() switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String when bool.TryParse(value.GetValue<string>(), out var parsed) => parsed,
        _ => null,
    };

    private static string? Text(JsonObject o, string name) => ScimFilterEvaluator.Get(o, name) switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        null => null,
        _ => throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, $"{name} must be a string."),
    };

    public static string Version(CrmUser user) => $"W/\"{user.ConcurrencyStamp}\"";

    private static string Location(ScimCall scim, string id) => $"{scim.BaseUrl}/Users/{Uri.EscapeDataString(id)}";

    /// <summary>A user as a SCIM resource (RFC 7643 §4.1, §4.3), with meta from the audit trail (§3.1).</summary>
    public static JsonObject Resource(ScimCall scim, CrmUser user, IReadOnlyDictionary<string, (DateTimeOffset Created, DateTimeOffset Modified)> meta)
    {
        var snapshot = scim.Guard.Snapshot;
        var info = snapshot.User(user.Id);
        var resource = new JsonObject
        {
            ["schemas"] = new JsonArray(ScimSchemas.User, ScimSchemas.EnterpriseUser, ScimSchemas.CrmUser),
            ["id"] = user.Id,
        };
        if (user.ExternalId is not null)
        {
            resource["externalId"] = user.ExternalId;
        }

        resource["userName"] = user.UserName;
        resource["displayName"] = user.DisplayName ?? user.UserName;
        resource["name"] = new JsonObject { ["formatted"] = user.DisplayName ?? user.UserName };
        resource["active"] = !user.IsDisabled;
        if (user.Email is not null)
        {
            resource["emails"] = new JsonArray(new JsonObject { ["value"] = user.Email, ["type"] = "work", ["primary"] = true });
        }

        if (info is not null)
        {
            resource["roles"] = new JsonArray([.. info.DirectRoles.Select(r => (JsonNode)new JsonObject { ["value"] = snapshot.Roles[r].Id, ["display"] = snapshot.Roles[r].Name })]);
            resource["groups"] = new JsonArray([.. info.Teams
                .Where(t => scim.Guard.Covers(SystemEntities.Team, CrmAction.Read, snapshot.BusinessUnits[snapshot.Teams[t].BusinessUnit].Id))
                .Select(t => (JsonNode)new JsonObject { ["value"] = snapshot.Teams[t].Id, ["$ref"] = $"{scim.BaseUrl}/Groups/{snapshot.Teams[t].Id}", ["display"] = snapshot.Teams[t].Name, ["type"] = "direct" })]);
        }

        var enterprise = new JsonObject();
        if (user.Department is not null)
        {
            enterprise["department"] = user.Department;
        }

        if (user.ManagerId is not null)
        {
            enterprise["manager"] = new JsonObject
            {
                ["value"] = user.ManagerId,
                ["$ref"] = Location(scim, user.ManagerId),
                ["displayName"] = snapshot.User(user.ManagerId)?.DisplayName,
            };
        }

        resource[ScimSchemas.EnterpriseUser] = enterprise;
        resource[ScimSchemas.CrmUser] = new JsonObject { ["businessUnit"] = user.BusinessUnit };
        var metadata = new JsonObject { ["resourceType"] = "User" };
        if (meta.TryGetValue(user.Id, out var times))
        {
            metadata["created"] = times.Created.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
            metadata["lastModified"] = times.Modified.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
        }

        metadata["location"] = Location(scim, user.Id);
        metadata["version"] = Version(user);
        resource["meta"] = metadata;
        return resource;
    }

    /// <summary>
    /// The people the caller may view: not application users (clients, not people), not deprovisioned ones (disabled with
    /// a termination date, what DELETE leaves), and only in business units the caller's <c>read</c> on system_user covers.
    /// </summary>
    private static async Task<(List<CrmUser> Users, Dictionary<string, (DateTimeOffset, DateTimeOffset)> Meta)> LoadAsync(ScimCall scim, string? id)
    {
        var store = scim.Http.RequestServices.GetRequiredService<IdentityStore>();
        var query = store.Users.AsNoTracking().Where(u => u.ApplicationClientId == null && !(u.IsDisabled && u.Terminated != null));
        if (id is not null)
        {
            query = query.Where(u => u.Id == id);
        }

        var users = (await query.ToListAsync(scim.Cancel))
            .Where(u => scim.Guard.Covers(SystemEntities.User, CrmAction.Read, u.BusinessUnit))
            .OrderBy(u => u.UserName, StringComparer.Ordinal)
            .ToList();
        var ids = users.Select(u => u.Id).ToList();

        // meta.created / meta.lastModified are the first and the newest audit entries about the user: every change goes
        // through the audited path, so the trail is the record of when (RFC 7643 §3.1).
        var audit = store.AuditTrail.AsNoTracking().Where(a => a.TargetKind == "system_user");
        audit = id is null ? audit : audit.Where(a => a.TargetId == id);
        var spans = await audit.GroupBy(a => a.TargetId).Select(g => new { Id = g.Key, First = g.Min(a => a.Sequence), Last = g.Max(a => a.Sequence) }).ToListAsync(scim.Cancel);
        var sequences = spans.SelectMany(s => new[] { s.First, s.Last }).Distinct().ToList();
        var times = (await store.AuditTrail.AsNoTracking().Where(a => sequences.Contains(a.Sequence)).Select(a => new { a.Sequence, a.Timestamp }).ToListAsync(scim.Cancel))
            .ToDictionary(a => a.Sequence, a => a.Timestamp);
        var meta = spans.Where(s => ids.Contains(s.Id)).ToDictionary(s => s.Id, s => (times[s.First], times[s.Last]));
        return (users, meta);
    }

    private static async Task<(CrmUser User, Dictionary<string, (DateTimeOffset, DateTimeOffset)> Meta)> FindAsync(ScimCall scim, string id)
    {
        var (users, meta) = await LoadAsync(scim, id);
        // A user outside the caller's business units is answered exactly like one that does not exist (no oracle).
        return users.Count == 1 ? (users[0], meta) : throw new ScimException(StatusCodes.Status404NotFound, null, $"There is no user '{id}'.");
    }

    private static async Task<CrmUser> LoadUserAsync(ScimCall scim, string id) =>
        (await FindAsync(scim, id)).User;
}
