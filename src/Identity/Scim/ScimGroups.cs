using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Model;

namespace CrmSecurity.Identity.Scim;

/// <summary>
/// <c>/scim/v2/Groups</c>: the model's teams as SCIM Group resources (RFC 7643 §4.2), members being users. Joining a team
/// hands out its roles and field security profiles, so each membership change is the admin API's audited
/// <c>user.teams</c> operation with its checks (assign on the team, and every privilege it gives held by the caller).
/// Only members the caller may view are shown, and only they are changed: a PUT never removes a member it cannot see.
/// </summary>
internal static class ScimGroups
{
    public static Task<IResult> ListAsync(ScimCall scim)
    {
        var snapshot = scim.Guard.Snapshot;
        var teams = snapshot.Teams.Where(t => Visible(scim, t)).OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => Resource(scim, t)).ToList();
        return Task.FromResult(ScimEndpoints.Json(scim.Http, scim.Page(teams)));
    }

    public static Task<IResult> GetAsync(ScimCall scim, string id) =>
        Task.FromResult(ScimEndpoints.Json(scim.Http, Resource(scim, Find(scim, id))));

    public static async Task<IResult> CreateAsync(ScimCall scim)
    {
        var body = await scim.BodyAsync();
        RequireSchema(body);
        var name = Text(body, "displayName");
        if (string.IsNullOrWhiteSpace(name))
        {
            // RFC 7643 §4.2: displayName is required.
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, "displayName is required.");
        }

        var snapshot = scim.Guard.Snapshot;
        var unit = (ScimFilterEvaluator.Get(body, ScimSchemas.CrmGroup) is JsonObject crm ? Text(crm, "businessUnit") : null)
            ?? snapshot.BusinessUnits[scim.Guard.CallerInfo.BusinessUnit].Id;
        var id = Guid.NewGuid().ToString("N");
        await scim.Apply((guard, ops, ct) => ops.CreateTeamAsync(guard, new TeamBody(id, name.Trim(), unit, null, null), ct));
        await SetMembersAsync(scim, id, Members(body));
        return ScimEndpoints.Json(scim.Http, Resource(scim, Find(scim, id)), StatusCodes.Status201Created, $"{scim.BaseUrl}/Groups/{id}");
    }

    public static async Task<IResult> ReplaceAsync(ScimCall scim, string id, bool patch)
    {
        var team = Find(scim, id);
        var current = Resource(scim, team);
        scim.RequireVersion(Version(scim.Guard.Snapshot, team));
        var body = await scim.BodyAsync();
        var desired = patch ? ScimPatch.Apply(current, body) : body;
        RequireSchema(desired);
        if (Text(desired, "displayName") is { } name && name != team.Name)
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.Mutability, "displayName of a group (the team's name) cannot be changed through SCIM; rename the team in the admin console.");
        }

        await SetMembersAsync(scim, id, Members(desired));
        return ScimEndpoints.Json(scim.Http, Resource(scim, Find(scim, id)));
    }

    public static async Task<IResult> DeleteAsync(ScimCall scim, string id)
    {
        var team = Find(scim, id);
        scim.RequireVersion(Version(scim.Guard.Snapshot, team));
        await scim.Apply((guard, ops, ct) => ops.DeleteTeamAsync(guard, id, ct));
        return Results.NoContent();
    }

    /// <summary>Adds and removes members until the visible members are <paramref name="wanted"/>: one audited change per user.</summary>
    private static async Task SetMembersAsync(ScimCall scim, string teamId, List<string> wanted)
    {
        var snapshot = scim.Guard.Snapshot;
        var team = Find(scim, teamId);
        var current = team.Members.Select(m => snapshot.Users[m]).Where(u => VisibleUser(scim, u)).Select(u => u.Id).ToList();
        foreach (var userId in wanted.Except(current, StringComparer.Ordinal))
        {
            var user = scim.Guard.Snapshot.User(userId);
            if (user is null || !VisibleUser(scim, user))
            {
                throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, $"members: there is no user '{userId}'.");
            }

            await MoveAsync(scim, userId, teams => [.. teams, teamId]);
        }

        foreach (var userId in current.Except(wanted, StringComparer.Ordinal))
        {
            await MoveAsync(scim, userId, teams => [.. teams.Where(t => t != teamId)]);
        }
    }

    private static Task MoveAsync(ScimCall scim, string userId, Func<List<string>, List<string>> change) =>
        scim.Apply((guard, ops, ct) =>
        {
            var snapshot = guard.Snapshot;
            var teams = snapshot.User(userId)?.Teams.Select(t => snapshot.Teams[t].Id).ToList() ?? [];
            return ops.SetUserTeamsAsync(guard, userId, new NamesBody(null, change(teams), null, null, null), ct);
        });

    private static List<string> Members(JsonObject body)
    {
        if (!ScimFilterEvaluator.TryGet(body, "members", out var members) || members is null)
        {
            return [];
        }

        if (members is not JsonArray list || list.Count > 10_000)
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, "members must be an array of at most 10000 {\"value\": user id}.");
        }

        return [.. list.Select(m => m is JsonObject o ? Text(o, "value") : null)
            .Select(v => v ?? throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, "every member needs a value (the user's id)."))
            .Distinct(StringComparer.Ordinal)];
    }

    private static void RequireSchema(JsonObject body)
    {
        if (!ScimPatch.Schemas(body).Contains(ScimSchemas.Group, StringComparer.OrdinalIgnoreCase))
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidSyntax, $"schemas must include \"{ScimSchemas.Group}\".");
        }
    }

    private static string? Text(JsonObject o, string name) => ScimFilterEvaluator.Get(o, name) switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        null => null,
        _ => throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, $"{name} must be a string."),
    };

    private static TeamInfo Find(ScimCall scim, string id)
    {
        var snapshot = scim.Guard.Snapshot;
        var index = snapshot.TeamIndex(id);
        // A team outside the caller's business units is answered exactly like one that does not exist.
        return index >= 0 && Visible(scim, snapshot.Teams[index])
            ? snapshot.Teams[index]
            : throw new ScimException(StatusCodes.Status404NotFound, null, $"There is no group '{id}'.");
    }

    private static bool Visible(ScimCall scim, TeamInfo team) =>
        scim.Guard.Covers(SystemEntities.Team, CrmAction.Read, scim.Guard.Snapshot.BusinessUnits[team.BusinessUnit].Id);

    private static bool VisibleUser(ScimCall scim, UserInfo user) =>
        user.Definition.ApplicationClientId is null && scim.Guard.Covers(SystemEntities.User, CrmAction.Read, scim.Guard.Snapshot.BusinessUnits[user.BusinessUnit].Id);

    /// <summary>The version of a team as SCIM sees it: its name, unit and every member (RFC 7644 §3.14 weak ETag).</summary>
    public static string Version(AuthorizationSnapshot snapshot, TeamInfo team)
    {
        var text = string.Join('\n', [team.Name, snapshot.BusinessUnits[team.BusinessUnit].Id, .. team.Members.Select(m => snapshot.Users[m].Id).Order(StringComparer.Ordinal)]);
        return $"W/\"{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)).AsSpan(0, 8))}\"";
    }

    private static JsonObject Resource(ScimCall scim, TeamInfo team)
    {
        var snapshot = scim.Guard.Snapshot;
        return new JsonObject
        {
            ["schemas"] = new JsonArray(ScimSchemas.Group, ScimSchemas.CrmGroup),
            ["id"] = team.Id,
            ["displayName"] = team.Name,
            ["members"] = new JsonArray([.. team.Members.Select(m => snapshot.Users[m]).Where(u => VisibleUser(scim, u)).OrderBy(u => u.UserName, StringComparer.Ordinal)
                .Select(u => (JsonNode)new JsonObject { ["value"] = u.Id, ["$ref"] = $"{scim.BaseUrl}/Users/{u.Id}", ["display"] = u.DisplayName, ["type"] = "User" })]),
            [ScimSchemas.CrmGroup] = new JsonObject { ["businessUnit"] = snapshot.BusinessUnits[team.BusinessUnit].Id },
            ["meta"] = new JsonObject
            {
                ["resourceType"] = "Group",
                ["location"] = $"{scim.BaseUrl}/Groups/{team.Id}",
                ["version"] = Version(snapshot, team),
            },
        };
    }
}
