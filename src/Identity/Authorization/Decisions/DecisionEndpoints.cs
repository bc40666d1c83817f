using System.Security.Claims;
using System.Text;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
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
        return endpoints;
    }

    /// <summary>Scope <c>authz.decide</c> (RFC 6749 §3.3 scope values are space-separated).</summary>
    public static bool HasScope(ClaimsPrincipal principal) =>
        (principal.FindFirst(Claims.Scope)?.Value ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(Scope, StringComparer.Ordinal);

    internal static async Task<Results<Ok<CheckResponse>, ProblemHttpResult>> CheckAsync(HttpContext http, AuthorizationModel model)
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

        if (Refused(http.User, request.UserId) is { } refused)
        {
            return refused;
        }

        var snapshot = await model.ForTokenAsync(request.UserId, request.PermVer, http.RequestAborted);
        var entity = snapshot.Entity(request.Entity);
        if (entity is null || entity.IsSystem)
        {
            return Invalid("entity", $"unknown entity '{request.Entity}' (declared: {string.Join(", ", snapshot.Entities.Where(e => !e.IsSystem).Select(e => e.Name))})");
        }

        var (record, recordProblem) = ToRecord(request.Record);
        if (recordProblem is not null)
        {
            return recordProblem;
        }

        var user = snapshot.UserIndex(request.UserId);
        if (user < 0)
        {
            return TypedResults.Ok(snapshot.Explain(Decision.Deny(DecisionBasis.UnknownUser, action: action), record));
        }

        var decision = request.Record is null ? snapshot.CheckEntity(user, entity.Index, action) : snapshot.Check(user, entity.Index, action, record);
        return TypedResults.Ok(snapshot.Explain(decision, record, request.PermVer, entityOnly: request.Record is null));
    }

    internal static async Task<Results<Ok<FieldsResponse>, ProblemHttpResult>> FieldsAsync(
        string userId, string entity, [FromQuery(Name = "perm_ver")] long? permVer, HttpContext http, AuthorizationModel model)
    {
        var (snapshot, user, info, problem) = await ResolveAsync(http, model, userId, entity, permVer);
        if (problem is not null)
        {
            return problem;
        }

        var access = snapshot!.Fields(user, info!.Index);
        var fields = new Dictionary<string, FieldDecision>(StringComparer.Ordinal);
        for (var i = 0; i < access.Length; i++)
        {
            var field = snapshot.FieldTable[info.FieldStart + i];
            fields[field.Name] = new FieldDecision(access[i].Name(), field.Definition.Sensitivity.Name(), field.Definition.Mask);
        }

        return TypedResults.Ok(new FieldsResponse { Entity = info.Name, Fields = fields, PermVer = snapshot.Users[user].PermVer, ModelVersion = snapshot.Version });
    }

    internal static async Task<Results<Ok<FilterResponse>, ProblemHttpResult>> FilterAsync(
        string userId, string entity, [FromQuery(Name = "action")] string? action, [FromQuery(Name = "perm_ver")] long? permVer, HttpContext http, AuthorizationModel model)
    {
        var actionName = action ?? "read";
        if (!CrmNames.TryParseAction(actionName, out var parsed))
        {
            return Invalid("action", $"unknown action '{actionName}' (use one of {CrmNames.ActionList})");
        }

        var (snapshot, user, info, problem) = await ResolveAsync(http, model, userId, entity, permVer);
        if (problem is not null)
        {
            return problem;
        }

        var filter = snapshot!.Filter(user, info!.Index, parsed);
        return TypedResults.Ok(new FilterResponse
        {
            Entity = info.Name,
            Action = parsed.Name(),
            Depth = filter.Depth.Name(),
            All = filter.All,
            None = filter.None,
            BusinessUnits = filter.BusinessUnits,
            Owners = filter.Owners,
            SharedRecords = filter.SharedRecords,
            Principals = filter.Principals,
            SqlExample = SqlExample(filter),
            PermVer = snapshot.Users[user].PermVer,
            ModelVersion = snapshot.Version,
        });
    }

    internal static async Task<IResult> ProfileAsync(string userId, [FromQuery(Name = "perm_ver")] long? permVer, HttpContext http, AuthorizationModel model)
    {
        if (Refused(http.User, userId) is { } refused)
        {
            return refused;
        }

        var snapshot = await model.ForTokenAsync(userId, permVer, http.RequestAborted);
        var user = snapshot.UserIndex(userId);
        if (user < 0)
        {
            return TypedResults.Problem(new ProblemDetails { Status = StatusCodes.Status404NotFound, Title = "No such user", Detail = $"There is no user '{userId}' in the model." });
        }

        // RFC 7232 §2.3 / §3.2: the permission version is the entity tag; a client holding it gets 304 Not Modified.
        var etag = new EntityTagHeaderValue($"\"{snapshot.Users[user].PermVer.ToString(System.Globalization.CultureInfo.InvariantCulture)}\"");
        http.Response.Headers.ETag = etag.ToString();
        http.Response.Headers.CacheControl = "no-cache";
        if (http.Request.GetTypedHeaders().IfNoneMatch is { Count: > 0 } match && match.Any(m => m.Compare(etag, useStrongComparison: false)))
        {
            return TypedResults.StatusCode(StatusCodes.Status304NotModified);
        }

        return TypedResults.Ok(ProfileBuilder.For(snapshot, user));
    }

    private static async Task<(AuthorizationSnapshot? Snapshot, int User, EntityInfo? Entity, ProblemHttpResult? Problem)> ResolveAsync(
        HttpContext http, AuthorizationModel model, string userId, string entity, long? permVer)
    {
        if (Refused(http.User, userId) is { } refused)
        {
            return (null, -1, null, refused);
        }

        var snapshot = await model.ForTokenAsync(userId, permVer, http.RequestAborted);
        var info = snapshot.Entity(entity);
        if (info is null || info.IsSystem)
        {
            return (null, -1, null, Invalid("entity", $"unknown entity '{entity}' (declared: {string.Join(", ", snapshot.Entities.Where(e => !e.IsSystem).Select(e => e.Name))})"));
        }

        var user = snapshot.UserIndex(userId);
        return user < 0
            ? (null, -1, null, TypedResults.Problem(new ProblemDetails { Status = StatusCodes.Status404NotFound, Title = "No such user", Detail = $"There is no user '{userId}' in the model." }))
            : (snapshot, user, info, null);
    }

    /// <summary>A user's own token may only ask about that user; a client's token (sub = client_id, RFC 9068 §2.2) about anyone.</summary>
    private static ProblemHttpResult? Refused(ClaimsPrincipal caller, string userId)
    {
        var subject = caller.FindFirst(Claims.Subject)?.Value;
        var client = caller.FindFirst(Claims.ClientId)?.Value;
        if (subject is null || subject == client || subject == userId)
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

    private static (RecordRef Record, ProblemHttpResult? Problem) ToRecord(CrmRecord? record)
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

        if (filter.SharedRecords.Count > 0)
        {
            parts.Add($"id IN ({List("shared", filter.SharedRecords.Count)})");
        }

        var text = new StringBuilder(string.Join(" OR ", parts));
        return text.ToString();
    }

    private static ProblemHttpResult Invalid(string field, string message) =>
        JsonBody.Problem(StatusCodes.Status400BadRequest, "The request is not valid", message, field);
}
