using System.Text.Json;
using System.Text.Json.Nodes;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Authorization.Decisions;

/// <summary>
/// The OpenID AuthZEN Authorization API 1.0 over the same decision code as <c>POST /authz/v1/check</c>, so any AuthZEN
/// policy enforcement point can ask: <c>POST /access/v1/evaluation</c>, <c>POST /access/v1/evaluations</c> (batch, with
/// <c>evaluations_semantic</c>) and the discovery document <c>/.well-known/authzen-configuration</c>. Same authentication
/// (scope <c>authz.decide</c>, audience <c>crm-security-authz</c>) and the same subject rule: a user's token asks only
/// about that user; a client's own token asks only about users of the tenants the client is registered for.
/// </summary>
/// <remarks>
/// Mapping: <c>subject</c> {type <c>user</c>, id = the user's <c>sub</c>}; <c>action.name</c> = a CRM action (<c>read</c>,
/// <c>update</c>, …); <c>resource</c> {type = entity logical name, id = record id, properties <c>owner</c>, <c>owner_kind</c>,
/// <c>business_unit</c>, <c>shares</c>}; <c>context.perm_ver</c> = the user's token <c>perm_ver</c>. Without a resource id and
/// properties the decision is entity-level (does the user hold the privilege at any depth).
/// </remarks>
internal static class AuthZenEndpoints
{
    public const string EvaluationPath = "/access/v1/evaluation";
    public const string EvaluationsPath = "/access/v1/evaluations";
    public const string MetadataPath = "/.well-known/authzen-configuration";

    /// <summary>Most evaluations in one batch request (a bound on work per request).</summary>
    public const int MaxEvaluations = 100;

    private static readonly string[] Semantics = ["execute_all", "deny_on_first_deny", "permit_on_first_permit"];

    public static IEndpointRouteBuilder MapAuthZenEndpoints(this IEndpointRouteBuilder endpoints)
    {
        // AuthZEN 1.0, Policy Decision Point Metadata: public, so a PEP can find the endpoints before it holds a token.
        endpoints.MapGet(MetadataPath, (Protocol.PublicOrigin origin) => TypedResults.Json(new JsonObject
        {
            ["policy_decision_point"] = origin.Value.AbsoluteUri.TrimEnd('/'),
            ["access_evaluation_endpoint"] = origin.Link(EvaluationPath).AbsoluteUri,
            ["access_evaluations_endpoint"] = origin.Link(EvaluationsPath).AbsoluteUri,
        })).ExcludeFromDescription();

        var group = endpoints.MapGroup("/access/v1").RequireAuthorization(DecisionEndpoints.Policy).DisableAntiforgery().WithTags("AuthZEN")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden);
        group.MapPost("/evaluation", EvaluationAsync).WithSummary("AuthZEN Access Evaluation: may this subject do this action on this resource?");
        group.MapPost("/evaluations", EvaluationsAsync).WithSummary("AuthZEN Access Evaluations: several decisions in one request, with evaluations_semantic.");
        return endpoints;
    }

    internal static async Task<IResult> EvaluationAsync(HttpContext http, AuthorizationModel model, IdentityStore store)
    {
        EchoRequestId(http);
        var (body, problem) = await JsonBody.ReadAsync<JsonObject>(http);
        return problem ?? await EvaluateOneAsync(http, model, store, body!);
    }

    internal static async Task<IResult> EvaluationsAsync(HttpContext http, AuthorizationModel model, IdentityStore store)
    {
        EchoRequestId(http);
        var (body, problem) = await JsonBody.ReadAsync<JsonObject>(http);
        if (problem is not null)
        {
            return problem;
        }

        // AuthZEN 1.0, Access Evaluations API: without evaluations (or with none) the request is a single evaluation, answered as one.
        if (body!["evaluations"] is not JsonArray items || items.Count == 0)
        {
            return await EvaluateOneAsync(http, model, store, body);
        }

        if (items.Count > MaxEvaluations)
        {
            return Invalid("evaluations", $"at most {MaxEvaluations} evaluations in one request.");
        }

        var semantic = Text(body["options"] as JsonObject, "evaluations_semantic") ?? "execute_all";
        if (!Semantics.Contains(semantic, StringComparer.Ordinal))
        {
            return Invalid("options.evaluations_semantic", $"unknown evaluations_semantic '{semantic}' (use {string.Join(", ", Semantics)}).");
        }

        var requests = new List<JsonObject>();
        for (var i = 0; i < items.Count; i++)
        {
            if (items[i] is not JsonObject item)
            {
                return Invalid($"evaluations[{i}]", "each evaluation is an object.");
            }

            // Access Evaluations API: each evaluation's subject, action, resource and context default to the request's own.
            requests.Add(Merge(body, item));
        }

        if (await TenantRefusalAsync(http, store, requests) is { } refused)
        {
            return refused;
        }

        var results = new JsonArray();
        for (var i = 0; i < requests.Count; i++)
        {
            var (decision, failed) = await DecideAsync(http, model, requests[i], $"evaluations[{i}].");
            if (failed is not null)
            {
                return failed;
            }

            results.Add(decision);
            var allowed = decision!["decision"]!.GetValue<bool>();
            // Access Evaluations API, evaluations_semantic: deny_on_first_deny stops at the first deny, permit_on_first_permit at the first permit.
            if ((semantic == "deny_on_first_deny" && !allowed) || (semantic == "permit_on_first_permit" && allowed))
            {
                break;
            }
        }

        return TypedResults.Json(new JsonObject { ["evaluations"] = results });
    }

    private static async Task<IResult> EvaluateOneAsync(HttpContext http, AuthorizationModel model, IdentityStore store, JsonObject body)
    {
        var request = Merge(body, null);
        if (await TenantRefusalAsync(http, store, [request]) is { } refused)
        {
            return refused;
        }

        var (decision, failed) = await DecideAsync(http, model, request, "");
        return failed ?? (IResult)TypedResults.Json(decision);
    }

    /// <summary>One evaluation mapped onto the check of <c>/authz/v1/check</c>, on the same snapshot rules.</summary>
    private static async Task<(JsonObject? Decision, ProblemHttpResult? Problem)> DecideAsync(HttpContext http, AuthorizationModel model, JsonObject request, string at)
    {
        var subject = request["subject"] as JsonObject;
        if (Text(subject, "type") is not "user")
        {
            return (null, Invalid($"{at}subject.type", "subject.type must be \"user\" (the subject is a user of this service, by its sub)."));
        }

        var userId = Text(subject, "id");
        if (string.IsNullOrEmpty(userId))
        {
            return (null, Invalid($"{at}subject.id", "subject.id (the user's sub) is required."));
        }

        var actionName = Text(request["action"] as JsonObject, "name");
        if (actionName is null || !CrmNames.TryParseAction(actionName, out var action))
        {
            return (null, Invalid($"{at}action.name", $"unknown action '{actionName}' (use one of {CrmNames.ActionList})."));
        }

        var resource = request["resource"] as JsonObject;
        var entity = Text(resource, "type");
        if (string.IsNullOrEmpty(entity))
        {
            return (null, Invalid($"{at}resource.type", "resource.type (the entity's logical name) is required."));
        }

        long? permVer = request["context"]?["perm_ver"] is JsonValue v && v.TryGetValue<long>(out var version) ? version : null;
        var (target, refused) = await DecisionEndpoints.ResolveAsync(http, model, userId, entity, permVer);
        if (refused is not null)
        {
            return (null, refused);
        }

        CrmRecord? crmRecord = null;
        var properties = resource!["properties"] as JsonObject;
        var recordId = Text(resource, "id");
        if (recordId is not null || properties is { Count: > 0 })
        {
            try
            {
                crmRecord = (properties?.Deserialize<CrmRecord>(JsonBody.Options) ?? new CrmRecord()) with { Id = recordId };
            }
            catch (JsonException e)
            {
                return (null, Invalid($"{at}resource.properties{(e.Path is { Length: > 1 } path ? path[1..] : "")}", "resource.properties holds owner, owner_kind, business_unit and shares as in /authz/v1/check."));
            }
        }

        var (record, recordProblem) = DecisionEndpoints.ToRecord(crmRecord);
        if (recordProblem is not null)
        {
            return (null, recordProblem);
        }

        // As in /authz/v1/check: shares are the CRM app's own data, taken only from its own client-credentials token.
        if (record.Shares is { Length: > 0 } && !DecisionEndpoints.IsClientsOwnToken(http.User))
        {
            return (null, JsonBody.Problem(StatusCodes.Status403Forbidden, "Not allowed",
                "resource.properties.shares are accepted only with the CRM app's own client-credentials token; a user's token cannot declare shares.", $"{at}resource.properties.shares"));
        }

        var snapshot = target.Snapshot;
        var decision = crmRecord is null
            ? snapshot.CheckEntity(target.User, target.Entity.Index, action)
            : snapshot.Check(target.User, target.Entity.Index, action, record);
        // The same risk effects as /authz/v1/check (docs/risk-access.md): an open finding about the user refuses here too.
        var risk = http.RequestServices.GetRequiredService<Risk.RiskAccess>();
        var explained = risk.Apply(snapshot.Explain(decision, record, target.TokenPermVer, entityOnly: crmRecord is null), snapshot.Users[target.User].Id, action);
        IdentityMetrics.AuthorizationDecisions.Add(1, new KeyValuePair<string, object?>("outcome", explained.Allowed ? "allow" : "deny"));
        return (new JsonObject
        {
            ["decision"] = explained.Allowed,
            // AuthZEN 1.0, Access Evaluation response: the context is the PDP's own; reason_admin carries the explanation.
            ["context"] = new JsonObject
            {
                ["reason_admin"] = new JsonObject { ["en"] = explained.Reason },
                ["crm"] = JsonSerializer.SerializeToNode(explained),
            },
        }, null);
    }

    /// <summary>
    /// The tenant binding: a client's own token (RFC 9068 §2.2, sub = client_id) asks only about users of the tenants the
    /// client is registered for (its <c>tenant</c> claims; none means none, deny by default). A user's token is held to
    /// the user themselves by <see cref="DecisionEndpoints.ResolveAsync"/>.
    /// </summary>
    private static async Task<ProblemHttpResult?> TenantRefusalAsync(HttpContext http, IdentityStore store, List<JsonObject> requests)
    {
        if (!DecisionEndpoints.IsClientsOwnToken(http.User))
        {
            return null;
        }

        var tenants = http.User.FindAll(Protocol.ClaimsContract.Tenant).Select(c => c.Value).ToHashSet(StringComparer.Ordinal);
        var subjects = requests.Select(r => Text(r["subject"] as JsonObject, "id")).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        var known = await store.Users.AsNoTracking().Where(u => subjects.Contains(u.Id)).Select(u => new { u.Id, u.Tenant }).ToListAsync(http.RequestAborted);
        var outside = known.FirstOrDefault(u => !tenants.Contains(u.Tenant));
        return outside is null
            ? null
            // OWASP ASVS 4.0.3 V4.2.1: no decisions (nor their reasons) about another tenant's people.
            : JsonBody.Problem(StatusCodes.Status403Forbidden, "Not allowed",
                $"subject '{outside.Id}' is not in a tenant client '{http.User.FindFirst(Claims.ClientId)?.Value}' is registered for; a client asks only about its own tenants' users.", "subject.id");
    }

    /// <summary>An evaluation with the request's defaults filled in (AuthZEN 1.0, Access Evaluations API).</summary>
    private static JsonObject Merge(JsonObject request, JsonObject? item)
    {
        var merged = new JsonObject();
        foreach (var key in new[] { "subject", "action", "resource", "context" })
        {
            if ((item?[key] ?? request[key]) is { } value)
            {
                merged[key] = value.DeepClone();
            }
        }

        return merged;
    }

    /// <summary>AuthZEN 1.0, Request Identification: the PDP returns the PEP's X-Request-ID so it can match answers to requests.</summary>
    private static void EchoRequestId(HttpContext http)
    {
        if (http.Request.Headers["X-Request-ID"].ToString() is { Length: > 0 and <= 200 } id)
        {
            http.Response.Headers["X-Request-ID"] = id;
        }
    }

    private static string? Text(JsonObject? o, string name) =>
        o?[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    private static ProblemHttpResult Invalid(string field, string message) =>
        JsonBody.Problem(StatusCodes.Status400BadRequest, "The request is not valid", message, field);
}
