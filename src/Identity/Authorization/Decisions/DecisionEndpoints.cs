using System.Security.Claims;
using System.Text;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Risk;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Events;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Net.Http.Headers;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Authorization.Decisions;

/// <summary>
/// The decision API for CRM apps not written in .NET (and the client library): check, fields, list filter and the
/// per-user profile, for bearer access tokens of this server with scope <c>authz.decide</c> (audience
/// <c>crm-security-authz</c>). A client acting for itself may ask about any user; a user's token only about that user.
/// </summary>
internal static class DecisionEndpoints
{
    public const string Scope = "authz.decide";
    public const string Audience = "crm-security-authz";
    public const string Policy = "authz.decide";

    public static IEndpointRouteBuilder MapDecisionEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/authz/v1").RequireAuthorization(Policy).DisableAntiforgery().WithTags("Decisions")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden);
        group.MapPost("/check", CheckAsync)
            .WithSummary("May this user do this action to this record? Allow or deny, with the role, privilege and depth, share or hierarchy that decided.")
            .Accepts<CheckRequest>("application/json");
        group.MapGet("/users/{userId}/fields/{entity}", FieldsAsync).WithSummary("Per field of the entity: hidden, masked, read or update.");
        group.MapGet("/users/{userId}/filter/{entity}", FilterAsync).WithSummary("The owners, business units and shared records a list query may return, for a WHERE clause.");
        group.MapGet("/users/{userId}/profile", ProfileAsync).WithSummary("Everything needed to decide for one user locally, with the permission version as ETag (If-None-Match gives 304).");
        group.MapGet("/who-can-access/{entity}", WhoCanAccessEntityAsync).WithSummary("For auditors: the users who hold the action on the entity, with every role path.");
        group.MapGet("/who-can-access/{entity}/fields/{field}", WhoCanAccessFieldAsync).WithSummary("For auditors: the users who see the field, with the roles and field security profiles that grant it.");
        group.MapPost("/who-can-access/{entity}/record", WhoCanAccessRecordAsync).WithSummary("For auditors: the users a check allows on this record, with the path that decided.")
            .Accepts<WhoCanAccessRecordRequest>("application/json");
        return endpoints;
    }

    internal static async Task<Results<Ok<CheckResponse>, ProblemHttpResult>> CheckAsync(HttpContext http, AuthorizationModel model, RiskAccess risk)
    {
        var (request, problem) = await JsonBody.ReadAsync<CheckRequest>(http);
        if (problem is not null)
        {
            return problem;
        }

        if (!CrmNames.TryParseAction(request!.Action, out var action))
        {
            return Invalid("action", $"unknown action '{request.Action}' (use one of {CrmNames.ActionList})");
        }

        var (target, refused) = await ResolveAsync(http, model, request.UserId, request.Entity, request.PermVer);
        if (refused is not null)
        {
            return refused;
        }

        var (record, recordProblem) = ToRecord(request.Record);
        if (recordProblem is not null)
        {
            return recordProblem;
        }

        // Shares sent with a record are the CRM app's own data about it: they are taken only from the app's own token
        // (client credentials). A user's token asking about themselves would otherwise share records with themselves.
        if (record.Shares is { Length: > 0 } && !IsClientsOwnToken(http.User))
        {
            return JsonBody.Problem(StatusCodes.Status403Forbidden, "Not allowed",
                "record.shares are accepted only with the CRM app's own client-credentials token; a user's token cannot declare shares.", "record.shares");
        }

        var snapshot = target.Snapshot;
        var decision = request.Record is null
            ? snapshot.CheckEntity(target.User, target.Entity.Index, action)
            : snapshot.Check(target.User, target.Entity.Index, action, record);
        // Risk that changes access: an open finding about the user can refuse what the model allows, or oblige a step-up.
        var response = risk.Apply(snapshot.Explain(decision, record, target.TokenPermVer, entityOnly: request.Record is null), snapshot.Users[target.User].Id, action);
        IdentityMetrics.AuthorizationDecisions.Add(1, new KeyValuePair<string, object?>("outcome", response.Allowed ? "allow" : "deny"));
        return TypedResults.Ok(response);
    }

    internal static async Task<Results<Ok<FieldsResponse>, ProblemHttpResult>> FieldsAsync(
        string userId, string entity, [FromQuery(Name = "perm_ver")] long? permVer, [FromQuery(Name = "fields")] string? only, HttpContext http, AuthorizationModel model,
        RiskAccess risk)
    {
        var (target, problem) = await ResolveAsync(http, model, userId, entity, permVer);
        if (problem is not null)
        {
            return problem;
        }

        var (snapshot, info) = (target.Snapshot, target.Entity);
        var access = snapshot.Fields(target.User, info.Index);
        var effect = risk.For(snapshot.Users[target.User].Id)?.Effect;
        var fields = new Dictionary<string, FieldDecision>(StringComparer.Ordinal);
        if (only is null)
        {
            for (var i = 0; i < access.Length; i++)
            {
                var field = snapshot.FieldTable[info.FieldStart + i];
                fields[field.Name] = new FieldDecision(RiskAccess.Field(access[i], field.Definition.Sensitivity, effect).Name(), field.Definition.Sensitivity.Name(), field.Definition.Mask);
            }
        }
        else
        {
            foreach (var name in only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!info.FieldIndex.TryGetValue(name, out var index))
                {
                    return Invalid("fields", $"unknown field '{name}' of entity '{info.Name}' (declared: {string.Join(", ", FieldNames(snapshot, info))})");
                }

                var field = snapshot.FieldTable[index];
                fields[field.Name] = new FieldDecision(RiskAccess.Field(access[index - info.FieldStart], field.Definition.Sensitivity, effect).Name(), field.Definition.Sensitivity.Name(), field.Definition.Mask);
            }
        }

        var user = snapshot.Users[target.User];
        return TypedResults.Ok(new FieldsResponse
        {
            Entity = info.Name,
            Fields = fields,
            PermVer = user.PermVer,
            ModelVersion = snapshot.Version,
            TokenStale = target.TokenPermVer < user.PermVer,
        });
    }

    internal static async Task<Results<Ok<FilterResponse>, ProblemHttpResult>> FilterAsync(
        string userId, string entity, [FromQuery(Name = "action")] string? action, [FromQuery(Name = "perm_ver")] long? permVer, HttpContext http, AuthorizationModel model)
    {
        var actionName = action ?? "read";
        if (!CrmNames.TryParseAction(actionName, out var parsed))
        {
            return Invalid("action", $"unknown action '{actionName}' (use one of {CrmNames.ActionList})");
        }

        var (target, problem) = await ResolveAsync(http, model, userId, entity, permVer);
        if (problem is not null)
        {
            return problem;
        }

        var snapshot = target.Snapshot;
        var filter = snapshot.Filter(target.User, target.Entity.Index, parsed);
        var user = snapshot.Users[target.User];
        return TypedResults.Ok(new FilterResponse
        {
            Entity = target.Entity.Name,
            Action = parsed.Name(),
            Depth = filter.Depth.Name(),
            All = filter.All,
            None = filter.None,
            BusinessUnits = filter.BusinessUnits,
            Owners = filter.Owners,
            SharedRecords = filter.SharedRecords,
            Principals = filter.Principals,
            SqlExample = SqlExample(filter),
            PermVer = user.PermVer,
            ModelVersion = snapshot.Version,
            TokenStale = target.TokenPermVer < user.PermVer,
        });
    }

    internal static async Task<IResult> ProfileAsync(string userId, [FromQuery(Name = "perm_ver")] long? permVer, HttpContext http, AuthorizationModel model)
    {
        if (Refused(http.User, userId) is { } refused)
        {
            return refused;
        }

        permVer ??= OwnPermVer(http.User, userId);
        var snapshot = await model.ForTokenAsync(userId, permVer, http.RequestAborted);
        var user = snapshot.UserIndex(userId);
        if (user < 0)
        {
            return UnknownUser(userId);
        }

        if (Behind(snapshot, user, permVer) is { } behind)
        {
            return behind;
        }

        // RFC 9110 §8.8.3 / §13.1.2: the permission version is the entity tag; a client holding it gets 304 Not Modified.
        var etag = new EntityTagHeaderValue($"\"{snapshot.Users[user].PermVer.ToString(System.Globalization.CultureInfo.InvariantCulture)}\"");
        http.Response.Headers.ETag = etag.ToString();
        http.Response.Headers.CacheControl = "no-cache";
        if (http.Request.GetTypedHeaders().IfNoneMatch is { Count: > 0 } match && match.Any(m => m.Compare(etag, useStrongComparison: false)))
        {
            return TypedResults.StatusCode(StatusCodes.Status304NotModified);
        }

        return TypedResults.Ok(ProfileBuilder.For(snapshot, user));
    }

    internal static async Task<Results<Ok<WhoCanAccessResponse>, ProblemHttpResult>> WhoCanAccessEntityAsync(
        string entity, [FromQuery(Name = "action")] string? action, HttpContext http, AuthorizationModel model, AccessEvents events)
    {
        var actionName = action ?? "read";
        if (!CrmNames.TryParseAction(actionName, out var parsed))
        {
            return Invalid("action", $"unknown action '{actionName}' (use one of {CrmNames.ActionList})");
        }

        var (snapshot, info, problem) = await AuditorAsync(http, model, events, entity, $"who can {actionName} {entity}");
        if (problem is not null)
        {
            return problem;
        }

        return TypedResults.Ok(new WhoCanAccessResponse
        {
            Entity = info!.Name,
            Action = parsed.Name(),
            Users = Grants(snapshot!.WhoCanAccessEntity(info.Index, parsed)),
            ModelVersion = snapshot.Version,
        });
    }

    internal static async Task<Results<Ok<WhoCanAccessResponse>, ProblemHttpResult>> WhoCanAccessFieldAsync(
        string entity, string field, HttpContext http, AuthorizationModel model, AccessEvents events)
    {
        var (snapshot, info, problem) = await AuditorAsync(http, model, events, entity, $"who can see {entity}.{field}");
        if (problem is not null)
        {
            return problem;
        }

        if (!info!.FieldIndex.TryGetValue(field, out var index))
        {
            return Invalid("field", $"unknown field '{field}' of entity '{info.Name}' (declared: {string.Join(", ", FieldNames(snapshot!, info))})");
        }

        return TypedResults.Ok(new WhoCanAccessResponse
        {
            Entity = info.Name,
            Field = field,
            Users = Grants(snapshot!.WhoCanAccessField(index)),
            ModelVersion = snapshot.Version,
        });
    }

    internal static async Task<Results<Ok<WhoCanAccessResponse>, ProblemHttpResult>> WhoCanAccessRecordAsync(
        string entity, HttpContext http, AuthorizationModel model, AccessEvents events)
    {
        var (request, bodyProblem) = await JsonBody.ReadAsync<WhoCanAccessRecordRequest>(http);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        if (!CrmNames.TryParseAction(request!.Action, out var action))
        {
            return Invalid("action", $"unknown action '{request.Action}' (use one of {CrmNames.ActionList})");
        }

        var (snapshot, info, problem) = await AuditorAsync(http, model, events, entity, $"who can {request.Action} {entity} record {request.Record.Id}");
        if (problem is not null)
        {
            return problem;
        }

        var (record, recordProblem) = ToRecord(request.Record);
        if (recordProblem is not null)
        {
            return recordProblem;
        }

        return TypedResults.Ok(new WhoCanAccessResponse
        {
            Entity = info!.Name,
            Action = action.Name(),
            Record = request.Record,
            Users = Grants(snapshot!.WhoCanAccessRecord(info.Index, action, record)),
            ModelVersion = snapshot.Version,
        });
    }

    /// <summary>
    /// Who-can-access lists every user and role path, so only an auditor may ask: the caller (the token's user, or
    /// the application user of a client acting for itself) must view users and security roles of the whole
    /// organisation. Every question, answered or refused, is written as a <c>search</c> access event.
    /// </summary>
    private static async Task<(AuthorizationSnapshot? Snapshot, EntityInfo? Entity, ProblemHttpResult? Problem)> AuditorAsync(
        HttpContext http, AuthorizationModel model, AccessEvents events, string entity, string question)
    {
        var snapshot = model.Current;
        var subject = http.User.FindFirst(Claims.Subject)?.Value;
        var client = http.User.FindFirst(Claims.ClientId)?.Value;
        var caller = snapshot.CallerIndex(subject, client);
        var allowed = caller >= 0
            && snapshot.DepthOf(caller, snapshot.EntityIndex(SystemEntities.User), CrmAction.Read) == Depth.Organization
            && snapshot.DepthOf(caller, snapshot.EntityIndex(SystemEntities.Role), CrmAction.Read) == Depth.Organization;
        await events.WriteAsync(new AccessEvent
        {
            Timestamp = events.Time.GetUtcNow(),
            UserId = subject ?? "unknown",
            UserName = caller >= 0 ? snapshot.Users[caller].UserName : null,
            Action = "search",
            ClientId = client,
            SourceIp = http.Connection.RemoteIpAddress?.ToString(),
            Outcome = allowed ? Outcomes.Success : Outcomes.Denied,
            Privilege = "who_can_access",
            Details = question,
        }, http.RequestAborted);
        if (!allowed)
        {
            return (null, null, TypedResults.Problem(new ProblemDetails
            {
                Status = StatusCodes.Status403Forbidden,
                Title = "Not allowed",
                Detail = "Who-can-access is for auditors: the caller must hold read on system_user and security_role at organization depth (a client acting for itself needs an application user that does).",
            }));
        }

        var info = snapshot.Entity(entity);
        return info is null || info.IsSystem
            ? (null, null, UnknownEntity(snapshot, entity))
            : (snapshot, info, null);
    }

    private static List<AccessGrantResponse> Grants(IReadOnlyList<AccessGrant> grants) =>
    [
        .. grants.Select(g => new AccessGrantResponse
        {
            UserId = g.User.Id,
            UserName = g.User.UserName,
            Access = g.Access,
            Paths = [.. g.Paths.Select(p => new AccessPathResponse { Kind = p.Kind, Text = p.Text, Role = p.Role, Team = p.Team, Profile = p.Profile, Depth = p.Depth, Grant = p.Grant })],
        }),
    ];

    internal readonly record struct Target(AuthorizationSnapshot Snapshot, int User, EntityInfo Entity, long? TokenPermVer);

    /// <summary>
    /// The snapshot, user and entity a decision is made on. The user's <c>perm_ver</c> (given, or from the caller's own
    /// token) makes the model catch up first when it is ahead; a decision older than the token is never served.
    /// </summary>
    internal static async Task<(Target Target, ProblemHttpResult? Problem)> ResolveAsync(
        HttpContext http, AuthorizationModel model, string userId, string entity, long? permVer)
    {
        if (Refused(http.User, userId) is { } refused)
        {
            return (default, refused);
        }

        permVer ??= OwnPermVer(http.User, userId);
        var snapshot = await model.ForTokenAsync(userId, permVer, http.RequestAborted);
        var info = snapshot.Entity(entity);
        if (info is null || info.IsSystem)
        {
            return (default, UnknownEntity(snapshot, entity));
        }

        var user = snapshot.UserIndex(userId);
        if (user < 0)
        {
            return (default, UnknownUser(userId));
        }

        return Behind(snapshot, user, permVer) is { } behind
            ? (default, behind)
            : (new Target(snapshot, user, info, permVer), null);
    }

    /// <summary>The token names a newer permission version than even a fresh read of the model: refuse rather than decide on older data.</summary>
    private static ProblemHttpResult? Behind(AuthorizationSnapshot snapshot, int user, long? permVer) =>
        permVer is { } version && version > snapshot.Users[user].PermVer
            ? JsonBody.Problem(StatusCodes.Status409Conflict, "Permission version ahead of the model",
                $"perm_ver {version} is newer than the user's permission version {snapshot.Users[user].PermVer} in model version {snapshot.Version}; retry shortly (another instance may have just made the change).", "perm_ver")
            : null;

    /// <summary>A user's own token carries its <c>perm_ver</c>; a client's token does not (the app passes the user's).</summary>
    private static long? OwnPermVer(ClaimsPrincipal caller, string userId) =>
        caller.FindFirst(Claims.Subject)?.Value == userId && long.TryParse(caller.FindFirst("perm_ver")?.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version)
            ? version
            : null;

    private static ProblemHttpResult UnknownEntity(AuthorizationSnapshot snapshot, string entity) =>
        Invalid("entity", $"unknown entity '{entity}' (declared: {string.Join(", ", snapshot.Entities.Where(e => !e.IsSystem).Select(e => e.Name))})");

    private static ProblemHttpResult UnknownUser(string userId) =>
        JsonBody.Problem(StatusCodes.Status404NotFound, "No such user", $"There is no user '{userId}' in the model.", "user_id");

    private static IEnumerable<string> FieldNames(AuthorizationSnapshot snapshot, EntityInfo info) =>
        Enumerable.Range(info.FieldStart, info.FieldCount).Select(i => snapshot.FieldTable[i].Name);

    /// <summary>RFC 9068 §2.2: a token a client obtained for itself (client credentials) has <c>sub</c> = <c>client_id</c>.</summary>
    internal static bool IsClientsOwnToken(ClaimsPrincipal caller) =>
        caller.FindFirst(Claims.Subject)?.Value is { } subject && subject == caller.FindFirst(Claims.ClientId)?.Value;

    /// <summary>A user's own token may only ask about that user; a client's token (sub = client_id, RFC 9068 §2.2) about anyone.</summary>
    private static ProblemHttpResult? Refused(ClaimsPrincipal caller, string userId)
    {
        var subject = caller.FindFirst(Claims.Subject)?.Value;
        var client = caller.FindFirst(Claims.ClientId)?.Value;
        // Deny by default: a token without a subject asks about nobody.
        if (subject is not null && (subject == client || subject == userId))
        {
            return null;
        }

        return TypedResults.Problem(new ProblemDetails
        {
            Status = StatusCodes.Status403Forbidden,
            Title = "Not allowed",
            Detail = "A user's token may only ask for decisions about that user; ask with the CRM app's own client-credentials token.",
        });
    }

    internal static (RecordRef Record, ProblemHttpResult? Problem) ToRecord(CrmRecord? record)
    {
        if (record is null)
        {
            return (default, null);
        }

        var ownerKind = PrincipalKind.User;
        if (record.OwnerKind is { } kind && !CrmNames.TryParsePrincipal(kind, out ownerKind))
        {
            return (default, Invalid("record.owner_kind", $"unknown owner kind '{kind}' (use user or team)"));
        }

        ShareRef[]? shares = null;
        if (record.Shares is { Count: > 0 } given)
        {
            shares = new ShareRef[given.Count];
            for (var i = 0; i < given.Count; i++)
            {
                var share = given[i];
                if (!CrmNames.TryParsePrincipal(share.Kind, out var shareKind))
                {
                    return (default, Invalid($"record.shares[{i}].kind", $"unknown kind '{share.Kind}' (use user or team)"));
                }

                var actions = ActionSet.None;
                for (var j = 0; j < share.Actions.Count; j++)
                {
                    if (!CrmNames.TryParseAction(share.Actions[j], out var shared))
                    {
                        return (default, Invalid($"record.shares[{i}].actions[{j}]", $"unknown action '{share.Actions[j]}' (use one of {CrmNames.ActionList})"));
                    }

                    actions |= ActionSets.Of(shared);
                }

                shares[i] = new ShareRef(shareKind, share.Principal, actions);
            }
        }

        return (new RecordRef(record.Id, record.Owner, ownerKind, record.BusinessUnit, shares), null);
    }

    /// <summary>An example WHERE clause with parameter names, for columns owner_id, business_unit_id and id.</summary>
    private static string SqlExample(ListFilter filter)
    {
        if (filter.All)
        {
            return "1 = 1";
        }

        if (filter.None)
        {
            return "1 = 0";
        }

        var parts = new List<string>();
        static string List(string prefix, int count) => string.Join(", ", Enumerable.Range(0, count).Select(i => $"@{prefix}{i}"));
        if (filter.Owners.Count > 0)
        {
            parts.Add($"owner_id IN ({List("owner", filter.Owners.Count)})");
        }

        if (filter.BusinessUnits.Count > 0)
        {
            parts.Add($"business_unit_id IN ({List("unit", filter.BusinessUnits.Count)})");
        }

        // A shared record matches only at the location it was shared at (id and business unit, and owner when named).
        for (var i = 0; i < filter.SharedRecords.Count; i++)
        {
            parts.Add(filter.SharedRecords[i].Owner is null
                ? $"(id = @shared{i} AND business_unit_id = @shared{i}_unit)"
                : $"(id = @shared{i} AND business_unit_id = @shared{i}_unit AND owner_id = @shared{i}_owner)");
        }

        var text = new StringBuilder(string.Join(" OR ", parts));
        return text.ToString();
    }

    private static ProblemHttpResult Invalid(string field, string message) =>
        JsonBody.Problem(StatusCodes.Status400BadRequest, "The request is not valid", message, field);
}
