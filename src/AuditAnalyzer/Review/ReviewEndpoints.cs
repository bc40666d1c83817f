using System.Text.Json;
using System.Text.Json.Serialization;
using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Review;

internal sealed record StatusBody(
    [property: JsonPropertyName("status")] string? Status,
    [property: JsonPropertyName("disposition")] string? Disposition,
    [property: JsonPropertyName("duplicate_of")] string? DuplicateOf,
    [property: JsonPropertyName("note")] string? Note,
    [property: JsonPropertyName("version")] int? Version);

internal sealed record NoteBody([property: JsonPropertyName("text")] string? Text);

internal sealed record RevealBody([property: JsonPropertyName("reason")] string? Reason);

internal sealed record AssignBody([property: JsonPropertyName("assignee")] string? Assignee, [property: JsonPropertyName("version")] int? Version);

internal sealed record BulkBody(
    [property: JsonPropertyName("ids")] IReadOnlyList<string>? Ids,
    [property: JsonPropertyName("action")] string? Action,
    [property: JsonPropertyName("status")] string? Status,
    [property: JsonPropertyName("disposition")] string? Disposition,
    [property: JsonPropertyName("assignee")] string? Assignee,
    [property: JsonPropertyName("note")] string? Note);

internal sealed record SuppressionBody(
    [property: JsonPropertyName("scope_kind")] string? ScopeKind,
    [property: JsonPropertyName("scope_value")] string? ScopeValue,
    [property: JsonPropertyName("reason")] string? Reason,
    [property: JsonPropertyName("expires_at")] DateTimeOffset? ExpiresAt,
    [property: JsonPropertyName("owner")] string? Owner,
    [property: JsonPropertyName("apply_to_existing")] bool ApplyToExisting);

internal sealed record BulkResult(string Id, int Status, string? Error);

/// <summary>
/// The review API under <c>/analyzer/review</c>: bearer tokens only (scheme <see cref="LiveModule.BearerScheme"/>,
/// scope findings:read), so no cross-site request carries the credential and no antiforgery token is needed. What the
/// caller may do beyond that comes from the host's authorization model through <see cref="IReviewAccess"/>.
/// </summary>
internal static class ReviewEndpoints
{
    /// <summary>snake_case like the findings' JSON Lines and every other API of the service.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Largest request body of the review API and pages.</summary>
    public const int MaxBodyBytes = 256 * 1024;

    public static void Map(IEndpointRouteBuilder endpoints)
    {
        // Bodies are small JSON documents (a note is at most 4,000 characters, a bulk action 500 ids): anything larger is
        // refused with 413 before it is read (OWASP ASVS 4.0.3 V13.1.3), instead of Kestrel's default of 30 MB.
        var group = endpoints.MapGroup("/analyzer/review").DisableAntiforgery().RequireAuthorization(LiveModule.ReviewPolicy)
            .WithMetadata(new RequestSizeLimitAttribute(MaxBodyBytes));
        group.MapGet("/findings", QueueAsync);
        group.MapGet("/findings/{id}", DetailAsync);
        group.MapPost("/findings/{id}/status", StatusAsync);
        group.MapPost("/findings/{id}/notes", NoteAsync);
        group.MapPost("/findings/{id}/assign", AssignAsync);
        group.MapPost("/findings/{id}/reveal", RevealAsync);
        group.MapPost("/findings/bulk", BulkAsync);
        group.MapGet("/users", RiskiestAsync);
        group.MapGet("/users/{pseudonym}", UserAsync);
        group.MapGet("/suppressions", SuppressionsAsync);
        group.MapPost("/suppressions", CreateSuppressionAsync);
        group.MapPost("/suppressions/{id}/revoke", RevokeSuppressionAsync);
    }

    private static ReviewCaller? Caller(HttpContext http, IReviewAccess access) => access.Identify(http.User, http.Connection.RemoteIpAddress?.ToString());

    internal static async Task<IResult> QueueAsync(HttpContext http, IReviewAccess access, ReviewActions actions, CancellationToken cancellationToken)
    {
        if (ReviewActions.MayRead(Caller(http, access)) is { } refused)
        {
            return Problem(refused);
        }

        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var filter = QueueFilters.Parse(name => http.Request.Query[name].ToString(), actions.Options.MaxPageSize, errors);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, title: "The queue's filters are not valid.");
        }

        return TypedResults.Json(await ReviewQueries.QueueAsync(actions.Db, filter, actions.PeerGroups, cancellationToken), Json);
    }

    internal static async Task<IResult> DetailAsync(string id, HttpContext http, IReviewAccess access, ReviewActions actions, TimeProvider time, CancellationToken cancellationToken)
    {
        if (ReviewActions.MayRead(Caller(http, access)) is { } refused)
        {
            return Problem(refused);
        }

        return await ReviewQueries.DetailAsync(actions.Db, id, time.GetUtcNow(), actions.PeerGroups, cancellationToken) is { } detail
            ? TypedResults.Json(detail, Json)
            : Problem(ReviewProblem.NotFound($"There is no finding '{id}'."));
    }

    internal static async Task<IResult> StatusAsync(string id, StatusBody? body, HttpContext http, IReviewAccess access, ReviewActions actions, TimeProvider time, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(body?.Status))
        {
            return Problem(ReviewProblem.Invalid("status", "status is required: acknowledged, confirmed, dismissed or resolved."));
        }

        var problem = await actions.ChangeStatusAsync(Caller(http, access), id, new StatusChange(body.Status, Blank(body.Disposition), Blank(body.DuplicateOf), body.Note, body.Version), bulk: false, cancellationToken);
        return problem is null ? await DetailAsync(id, http, access, actions, time, cancellationToken) : Problem(problem);
    }

    internal static async Task<IResult> NoteAsync(string id, NoteBody? body, HttpContext http, IReviewAccess access, ReviewActions actions, CancellationToken cancellationToken)
    {
        var problem = await actions.AddNoteAsync(Caller(http, access), id, body?.Text, cancellationToken);
        return problem is null ? TypedResults.NoContent() : Problem(problem);
    }

    internal static async Task<IResult> AssignAsync(string id, AssignBody? body, HttpContext http, IReviewAccess access, ReviewActions actions, CancellationToken cancellationToken)
    {
        var problem = await actions.AssignAsync(Caller(http, access), id, body?.Assignee, body?.Version, bulk: false, cancellationToken);
        return problem is null ? TypedResults.NoContent() : Problem(problem);
    }

    internal static async Task<IResult> RevealAsync(string id, RevealBody? body, HttpContext http, IReviewAccess access, ReviewActions actions, CancellationToken cancellationToken)
    {
        var problems = new List<ReviewProblem>();
        var revealed = await actions.RevealAsync(Caller(http, access), id, body?.Reason, problems, cancellationToken);
        if (revealed is not { } user)
        {
            return Problem(problems[0]);
        }

        // Audited before it was read; a cache must not keep it (RFC 9111 §5.2.2.5).
        http.Response.Headers.CacheControl = "no-store";
        return TypedResults.Json(new { finding_id = id, user_id = user.UserId, user_name = user.UserName, peer_group = user.PeerGroup }, Json);
    }

    /// <summary>The same action on many findings, each in its own transaction; the reply has one result per id.</summary>
    internal static async Task<IResult> BulkAsync(BulkBody? body, HttpContext http, IReviewAccess access, ReviewActions actions, CancellationToken cancellationToken)
    {
        var caller = Caller(http, access);
        if (ReviewActions.MayReview(caller) is { } refused)
        {
            return Problem(refused);
        }

        if (body?.Ids is not { Count: > 0 } ids || ids.Count > actions.Options.MaxBulk)
        {
            return Problem(ReviewProblem.Invalid("ids", $"ids must list 1 to {actions.Options.MaxBulk} finding ids."));
        }

        if (body.Action is not ("status" or "assign"))
        {
            return Problem(ReviewProblem.Invalid("action", "action must be status or assign."));
        }

        var results = new List<BulkResult>();
        foreach (var id in ids.Distinct(StringComparer.Ordinal))
        {
            var problem = body.Action == "assign"
                ? await actions.AssignAsync(caller, id, Blank(body.Assignee), null, bulk: true, cancellationToken)
                : await actions.ChangeStatusAsync(caller, id, new StatusChange(body.Status ?? "", Blank(body.Disposition), null, body.Note, null), bulk: true, cancellationToken);
            results.Add(new BulkResult(id, problem?.Status ?? 200, problem?.Message));
        }

        return TypedResults.Json(new { succeeded = results.Count(r => r.Status == 200), failed = results.Count(r => r.Status != 200), results }, Json);
    }

    internal static async Task<IResult> UserAsync(string pseudonym, HttpContext http, IReviewAccess access, ReviewActions actions, TimeProvider time, CancellationToken cancellationToken)
    {
        if (ReviewActions.MayRead(Caller(http, access)) is { } refused)
        {
            return Problem(refused);
        }

        return await ReviewQueries.UserAsync(actions.Db, pseudonym, time.GetUtcNow(), 90, cancellationToken) is { } page
            ? TypedResults.Json(page, Json)
            : Problem(ReviewProblem.NotFound($"No finding has the user '{pseudonym}'."));
    }

    /// <summary>The riskiest users by pseudonym, with the same read right as the queue.</summary>
    internal static async Task<IResult> RiskiestAsync(HttpContext http, IReviewAccess access, ReviewActions actions, TimeProvider time, CancellationToken cancellationToken)
    {
        if (ReviewActions.MayRead(Caller(http, access)) is { } refused)
        {
            return Problem(refused);
        }

        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var (sort, page, pageSize) = ReviewQueries.RiskyFilter(name => http.Request.Query[name].ToString(), actions.Options.MaxPageSize, errors);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, title: "The riskiest-users view's parameters are not valid.");
        }

        return TypedResults.Json(await ReviewQueries.RiskiestAsync(actions.Db, sort, page, pageSize, time.GetUtcNow(), cancellationToken), Json);
    }

    internal static async Task<IResult> SuppressionsAsync(HttpContext http, IReviewAccess access, ReviewActions actions, TimeProvider time, CancellationToken cancellationToken)
    {
        if (ReviewActions.MayRead(Caller(http, access)) is { } refused)
        {
            return Problem(refused);
        }

        var key = await actions.PseudonymKeyAsync(cancellationToken);
        var rows = await actions.Db.Suppressions.AsNoTracking().OrderByDescending(s => s.CreatedTicks).ToListAsync(cancellationToken);
        var now = time.GetUtcNow().UtcTicks;
        return TypedResults.Json(rows.Select(s => new { active = SuppressionMatcher.IsActive(s.ToMatcher(actions.Options.MaxSuppressionLifetime), now), suppression = ReviewActions.Describe(s, key) }), Json);
    }

    internal static async Task<IResult> CreateSuppressionAsync(SuppressionBody? body, HttpContext http, IReviewAccess access, ReviewActions actions, CancellationToken cancellationToken)
    {
        var request = new SuppressionRequest(body?.ScopeKind ?? "", body?.ScopeValue ?? "", body?.Reason ?? "", body?.ExpiresAt, Blank(body?.Owner), body?.ApplyToExisting ?? false);
        var (created, applied, problem) = await actions.CreateSuppressionAsync(Caller(http, access), request, cancellationToken);
        if (problem is not null)
        {
            return Problem(problem);
        }

        var key = await actions.PseudonymKeyAsync(cancellationToken);
        return TypedResults.Json(new { suppression = ReviewActions.Describe(created!, key), applied }, Json, statusCode: StatusCodes.Status201Created);
    }

    internal static async Task<IResult> RevokeSuppressionAsync(string id, HttpContext http, IReviewAccess access, ReviewActions actions, CancellationToken cancellationToken)
    {
        var problem = await actions.RevokeSuppressionAsync(Caller(http, access), id, cancellationToken);
        return problem is null ? TypedResults.NoContent() : Problem(problem);
    }

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    /// <summary>RFC 9457 problem details; a bad field is named in <c>errors</c>.</summary>
    internal static IResult Problem(ReviewProblem problem) => problem.Field is { } field
        ? TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [problem.Message] }, detail: problem.Message, title: "The request is not valid.")
        : TypedResults.Problem(detail: problem.Message, statusCode: problem.Status, title: problem.Status switch
        {
            StatusCodes.Status403Forbidden => "Not allowed",
            StatusCodes.Status404NotFound => "Not found",
            StatusCodes.Status409Conflict => "Conflict",
            _ => "The request failed",
        });
}
