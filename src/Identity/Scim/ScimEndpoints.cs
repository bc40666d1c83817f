using System.Globalization;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Shared;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Scim;

/// <summary>
/// SCIM 2.0 (RFC 7643, RFC 7644) under <c>/scim/v2</c>: Users, Groups (the model's teams) and the discovery documents.
/// Callers present an access token of this server that a client obtained for itself (client credentials) with scope
/// <c>scim</c>, on the admin API's authentication scheme; the client acts as its application user, so what it may see
/// and change is that user's admin privileges (business units included), and every change is one of the admin API's
/// audited operations with the client named as the actor. Errors use SCIM's error format (RFC 7644 §3.12).
/// </summary>
internal static class ScimEndpoints
{
    public const string Scope = "scim";
    public const string BasePath = "/scim/v2";
    public const string MediaType = "application/scim+json";

    public static IEndpointRouteBuilder MapScimEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var scim = endpoints.MapGroup(BasePath).DisableAntiforgery().ExcludeFromDescription()
            .RequireAuthorization(policy => policy
                .AddAuthenticationSchemes(IdentityModule.AdminScheme)
                .RequireAuthenticatedUser()
                // RFC 9068 §2.2.3 / RFC 8693 §4.2: the one space-delimited scope claim holds scim.
                .RequireAssertion(context => ScopeClaims.HasScope(context.User, Scope)));

        scim.MapGet("/ServiceProviderConfig", Handler(http => Run(http, scim =>
            Task.FromResult(Json(http, ScimSchemas.ServiceProviderConfig(scim.BaseUrl, MaxBody(http)))))));
        scim.MapGet("/ResourceTypes", Handler(http => Run(http, scim => Task.FromResult(Json(http, List(ScimSchemas.ResourceTypes(scim.BaseUrl), 1))))));
        scim.MapGet("/ResourceTypes/{id}", (string id, HttpContext http) => Run(http, scim => Task.FromResult(Json(http, One(ScimSchemas.ResourceTypes(scim.BaseUrl), id, "resource type")))));
        scim.MapGet("/Schemas", Handler(http => Run(http, scim => Task.FromResult(Json(http, List(ScimSchemas.Schemas(scim.BaseUrl), 1))))));
        scim.MapGet("/Schemas/{id}", (string id, HttpContext http) => Run(http, scim => Task.FromResult(Json(http, One(ScimSchemas.Schemas(scim.BaseUrl), id, "schema")))));

        scim.MapGet("/Users", Handler(http => Run(http, scim => ScimUsers.ListAsync(scim))));
        scim.MapGet("/Users/{id}", (string id, HttpContext http) => Run(http, scim => ScimUsers.GetAsync(scim, id)));
        scim.MapPost("/Users", Handler(http => Run(http, scim => ScimUsers.CreateAsync(scim))));
        scim.MapPut("/Users/{id}", (string id, HttpContext http) => Run(http, scim => ScimUsers.ReplaceAsync(scim, id, patch: false)));
        scim.MapPatch("/Users/{id}", (string id, HttpContext http) => Run(http, scim => ScimUsers.ReplaceAsync(scim, id, patch: true)));
        scim.MapDelete("/Users/{id}", (string id, HttpContext http) => Run(http, scim => ScimUsers.DeleteAsync(scim, id)));

        scim.MapGet("/Groups", Handler(http => Run(http, scim => ScimGroups.ListAsync(scim))));
        scim.MapGet("/Groups/{id}", (string id, HttpContext http) => Run(http, scim => ScimGroups.GetAsync(scim, id)));
        scim.MapPost("/Groups", Handler(http => Run(http, scim => ScimGroups.CreateAsync(scim))));
        scim.MapPut("/Groups/{id}", (string id, HttpContext http) => Run(http, scim => ScimGroups.ReplaceAsync(scim, id, patch: false)));
        scim.MapPatch("/Groups/{id}", (string id, HttpContext http) => Run(http, scim => ScimGroups.ReplaceAsync(scim, id, patch: true)));
        scim.MapDelete("/Groups/{id}", (string id, HttpContext http) => Run(http, scim => ScimGroups.DeleteAsync(scim, id)));
        return endpoints;
    }

    /// <summary>A handler that takes only the request: typed as a route handler so its result is written (ASP0016).</summary>
    private static Delegate Handler(Func<HttpContext, Task<IResult>> handler) => handler;

    /// <summary>Runs a SCIM call as the client's application user; a refusal anywhere becomes a SCIM error (RFC 7644 §3.12).</summary>
    private static async Task<IResult> Run(HttpContext http, Func<ScimCall, Task<IResult>> handler)
    {
        try
        {
            return await handler(ScimCall.For(http));
        }
        catch (ScimException e)
        {
            return Error(http, e);
        }
    }

    public static IResult Error(HttpContext http, ScimException e) => Json(http, e.ToJson(), e.Status);

    /// <summary>A SCIM response: <c>application/scim+json</c> (RFC 7644 §3.1), with the resource's version as ETag (§3.14).</summary>
    public static IResult Json(HttpContext http, JsonNode body, int status = StatusCodes.Status200OK, string? location = null)
    {
        if (body is JsonObject o && ScimFilterEvaluator.Get(o, "meta") is JsonObject meta && ScimFilterEvaluator.Get(meta, "version") is JsonValue version)
        {
            http.Response.Headers.ETag = version.GetValue<string>();
        }

        if (location is not null)
        {
            http.Response.Headers.Location = location;
        }

        http.Response.Headers.CacheControl = "no-store";
        return Results.Text(body.ToJsonString(), MediaType, Encoding.UTF8, status);
    }

    /// <summary>A list response (RFC 7644 §3.4.2): the page of resources and the total that matched.</summary>
    public static JsonObject List(IReadOnlyList<JsonNode> page, int startIndex, int? total = null) => new()
    {
        ["schemas"] = new JsonArray(ScimSchemas.ListResponse),
        ["totalResults"] = total ?? page.Count,
        ["startIndex"] = startIndex,
        ["itemsPerPage"] = page.Count,
        ["Resources"] = new JsonArray([.. page.Select(r => r.DeepClone())]),
    };

    private static JsonObject List(JsonArray all, int startIndex) => List(all.Select(r => r!).ToList(), startIndex);

    private static JsonObject One(JsonArray all, string id, string kind) =>
        all.OfType<JsonObject>().FirstOrDefault(r => string.Equals(ScimFilterEvaluator.Get(r, "id")?.GetValue<string>(), id, StringComparison.OrdinalIgnoreCase))
        ?? throw new ScimException(StatusCodes.Status404NotFound, null, $"There is no {kind} '{id}'.");

    public static int MaxBody(HttpContext http) => http.RequestServices.GetRequiredService<IOptions<IdentitySettings>>().Value.Authorization.MaxRequestBodyBytes;
}

/// <summary>One SCIM request: the caller as the model knows it, the admin operations, paging and body reading.</summary>
internal sealed class ScimCall(HttpContext http, AdminGuard guard)
{
    public HttpContext Http => http;

    public AdminGuard Guard { get; private set; } = guard;

    public AdminOperations Operations => http.RequestServices.GetRequiredService<AdminOperations>();

    public CancellationToken Cancel => http.RequestAborted;

    /// <summary>
    /// The absolute base of the SCIM endpoints, for <c>meta.location</c> and <c>$ref</c> (RFC 7643 §3.1): from the public
    /// origin (the issuer's), never from the request's Host header, which the caller chooses.
    /// </summary>
    public string BaseUrl { get; } = http.RequestServices.GetRequiredService<Protocol.PublicOrigin>().Link(ScimEndpoints.BasePath).AbsoluteUri.TrimEnd('/');

    public static ScimCall For(HttpContext http)
    {
        // The brief of this API: a client provisions as itself (client credentials, RFC 9068 §2.2: sub = client_id); a
        // person's token, even with the scope, does not drive provisioning.
        var subject = http.User.FindFirst(Claims.Subject)?.Value;
        var client = http.User.FindFirst(Claims.ClientId)?.Value;
        if (subject is null || !string.Equals(subject, client, StringComparison.Ordinal))
        {
            throw new ScimException(StatusCodes.Status403Forbidden, null, "SCIM provisioning takes a client's own access token (client credentials with scope scim), not a user's.");
        }

        return new ScimCall(http, Refreshed(http) ?? throw new ScimException(StatusCodes.Status403Forbidden, null,
            $"Client '{client}' has no enabled application user: provisioning acts as the client's application user, whose admin privileges say which business units it reaches. Create one in the admin console."));
    }

    private static AdminGuard? Refreshed(HttpContext http) =>
        AdminGuard.For(http.RequestServices.GetRequiredService<Authorization.Store.AuthorizationModel>().Current, http.User, http.Connection.RemoteIpAddress?.ToString());

    /// <summary>After a change the model has a new snapshot: the next operation must start from it, not from the one before.</summary>
    public void Refresh() => Guard = Refreshed(http) ?? throw new ScimException(StatusCodes.Status403Forbidden, null, "The client's application user was disabled meanwhile.");

    /// <summary>Runs one admin operation; its refusal becomes the SCIM error of the same meaning.</summary>
    public async Task Apply(Func<AdminGuard, AdminOperations, CancellationToken, Task<AdminProblem?>> operation)
    {
        var problem = await operation(Guard, Operations, Cancel);
        Refresh();
        if (problem is not null)
        {
            throw ToScim(problem);
        }
    }

    public static ScimException ToScim(AdminProblem problem)
    {
        var detail = problem.Errors is { Count: > 0 } errors
            ? string.Join(" ", errors.Select(e => $"{ScimNames.Attribute(e.Key)}: {string.Join(" ", e.Value)}"))
            : problem.Detail;
        return problem.Status switch
        {
            // RFC 7644 §3.12: 409 with uniqueness for a taken userName or e-mail address.
            StatusCodes.Status409Conflict => new ScimException(StatusCodes.Status409Conflict, ScimException.Uniqueness, detail),
            StatusCodes.Status400BadRequest => new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, detail),
            _ => new ScimException(problem.Status, null, detail),
        };
    }

    /// <summary>RFC 7644 §3.4.2.4: startIndex is 1-based (less than 1 means 1), count is at most the server's maximum.</summary>
    public (ScimFilter? Filter, int StartIndex, int Count) Query()
    {
        var query = http.Request.Query;
        var filter = query.TryGetValue("filter", out var text) && !string.IsNullOrWhiteSpace(text) ? ScimFilterParser.Parse(text.ToString()) : null;
        var start = int.TryParse(query["startIndex"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? Math.Max(1, s) : 1;
        var count = int.TryParse(query["count"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var c) ? Math.Clamp(c, 0, ScimSchemas.MaxResults) : ScimSchemas.MaxResults;
        return (filter, start, count);
    }

    public JsonObject Page(IReadOnlyList<JsonObject> resources)
    {
        var (filter, start, count) = Query();
        var matching = filter is null ? resources : [.. resources.Where(r => ScimFilterEvaluator.Matches(filter, r))];
        return ScimEndpoints.List([.. matching.Skip(start - 1).Take(count)], start, matching.Count);
    }

    /// <summary>The request body as JSON: a SCIM or JSON media type, within the size limit, parsed to a bounded depth.</summary>
    public async Task<JsonObject> BodyAsync()
    {
        var limit = ScimEndpoints.MaxBody(http);
        if (http.Request.ContentLength > limit)
        {
            throw new ScimException(StatusCodes.Status413PayloadTooLarge, null, $"The body is larger than {limit} bytes (ServiceProviderConfig maxPayloadSize).");
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = limit;
        }

        var type = http.Request.ContentType ?? "";
        if (!type.StartsWith(ScimEndpoints.MediaType, StringComparison.OrdinalIgnoreCase) && !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ScimException(StatusCodes.Status415UnsupportedMediaType, null, $"Send the body as {ScimEndpoints.MediaType} (RFC 7644 §3.1).");
        }

        try
        {
            return await JsonNode.ParseAsync(http.Request.Body, documentOptions: new JsonDocumentOptions { MaxDepth = 16 }, cancellationToken: Cancel) as JsonObject
                ?? throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidSyntax, "The body must be a JSON object.");
        }
        catch (JsonException e)
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidSyntax, $"The body is not valid JSON: {e.Message.Split(" Path:", 2)[0]}");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new ScimException(StatusCodes.Status413PayloadTooLarge, null, $"The body is larger than {limit} bytes (ServiceProviderConfig maxPayloadSize).");
        }
    }

    /// <summary>
    /// RFC 7644 §3.14 / RFC 9110 §13.1.1: with If-Match, the change applies only to the version the client holds;
    /// another version is 412 Precondition Failed. <c>*</c> matches any.
    /// </summary>
    public void RequireVersion(string current)
    {
        var ifMatch = http.Request.Headers.IfMatch.ToString();
        if (ifMatch.Length == 0)
        {
            return;
        }

        var tags = ifMatch.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Bare);
        if (!tags.Any(t => t == "*" || t == Bare(current)))
        {
            throw new ScimException(StatusCodes.Status412PreconditionFailed, null,
                $"The resource was changed since you read it: If-Match {ifMatch}, current version {current}. Read it again and apply your change to the current version.");
        }

        static string Bare(string tag) => (tag.StartsWith("W/", StringComparison.Ordinal) ? tag[2..] : tag).Trim('"');
    }

    public string ClientId => http.User.FindFirst(Claims.ClientId)?.Value ?? "";

    public ClaimsPrincipal Principal => http.User;
}

/// <summary>Admin API field names as SCIM attribute names, so an error names what the SCIM client sent.</summary>
internal static class ScimNames
{
    public static string Attribute(string field) => field switch
    {
        "user_name" => "userName",
        "display_name" => "displayName",
        "email" => "emails",
        "external_id" => "externalId",
        "department" => $"{ScimSchemas.EnterpriseUser}:department",
        "manager" => $"{ScimSchemas.EnterpriseUser}:manager",
        "business_unit" => $"{ScimSchemas.CrmUser}:businessUnit",
        "password" => "password",
        _ when field.StartsWith("roles", StringComparison.Ordinal) => "roles",
        _ when field.StartsWith("teams", StringComparison.Ordinal) => "members",
        _ => field,
    };
}
