using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>The reply to a batch: what was stored, what was already there, and every rejected line.</summary>
internal sealed record BatchResponse(int Lines, int Stored, int Duplicates, int Rejected, IReadOnlyList<LineError> Errors);

/// <summary>HTTP endpoints of live ingestion and the findings list.</summary>
public static class LiveEndpoints
{
    /// <summary>
    /// Maps <c>POST /analyzer/events</c> (scope events:write), <c>GET /analyzer/findings</c> (scope findings:read) and the
    /// review API under <c>/analyzer/review</c> (scope findings:read, and the caller's review rights in the host's model).
    /// </summary>
    public static IEndpointRouteBuilder MapAuditAnalyzerLive(this IEndpointRouteBuilder endpoints)
    {
        // Bearer tokens only, no cookies: no cross-site request can carry the credential, so no antiforgery token.
        var group = endpoints.MapGroup("/analyzer").DisableAntiforgery();
        group.MapPost("/events", IngestAsync).RequireAuthorization(LiveModule.WritePolicy);
        group.MapGet("/findings", ListFindingsAsync).RequireAuthorization(LiveModule.ReadPolicy);
        Review.ReviewEndpoints.Map(endpoints);
        return endpoints;
    }

    internal static async Task<Results<Ok<BatchResponse>, ValidationProblem, ProblemHttpResult>> IngestAsync(
        HttpContext http, LiveDbContext db, IOptions<LiveOptions> options, TimeProvider time, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var limit = settings.MaxBatchBytes;
        if (http.Request.ContentLength > limit)
        {
            return TooLarge($"The batch is {http.Request.ContentLength} bytes; at most {limit} bytes are accepted per request. Split it into smaller batches.");
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
        {
            // Our own limit answers with problem details; the server's (30 MB by default) must not cut in first.
            bodySize.MaxRequestBodySize = limit + 1;
        }

        // Read at most one byte more than allowed, so a body without Content-Length is refused the same way.
        var body = new byte[(int)Math.Min(limit + 1, 64 * 1024)];
        var length = 0;
        while (true)
        {
            if (length == body.Length)
            {
                if (length > limit)
                {
                    break;
                }

                Array.Resize(ref body, (int)Math.Min(limit + 1, (long)body.Length * 2));
            }

            var read = await http.Request.Body.ReadAsync(body.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                break;
            }

            length += read;
        }

        if (length > limit)
        {
            return TooLarge($"The batch is larger than {limit} bytes. Split it into smaller batches.");
        }

        // The sending client scopes event ids: two CRM apps may use the same ids for different events.
        var user = http.User;
        var client = user.FindFirst("client_id")?.Value ?? user.FindFirst("azp")?.Value ?? user.FindFirst("sub")?.Value;
        if (string.IsNullOrEmpty(client))
        {
            return TypedResults.Problem(title: "The access token names no client (client_id).", statusCode: StatusCodes.Status403Forbidden);
        }

        var parsed = EventBatches.Parse(body, length, client, settings, time.GetUtcNow());
        if (parsed is not { } batch)
        {
            return TooLarge($"The batch has more than {settings.MaxBatchLines} lines. Split it into smaller batches.");
        }

        if (batch.Rows.Count == 0 && batch.Errors.Count > 0)
        {
            return TypedResults.ValidationProblem(
                batch.Errors.GroupBy(e => $"line {e.Line}").ToDictionary(g => g.Key, g => g.Select(e => $"{e.Reason}: {e.Message}").ToArray()),
                title: "No line of the batch is a valid access event.");
        }

        var stored = await EventBatches.StoreAsync(db, batch.Rows, cancellationToken);
        return TypedResults.Ok(new BatchResponse(batch.Lines, stored, batch.Duplicates + (batch.Rows.Count - stored), batch.Errors.Count, batch.Errors));
    }

    internal static async Task<Results<Ok<List<JsonElement>>, ValidationProblem>> ListFindingsAsync(
        LiveDbContext db, [FromQuery(Name = "user_id")] string? userId, [FromQuery(Name = "min_score")] double? minScore, int? limit, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = ["limit must be between 1 and 1000."] });
        }

        var query = db.Findings.AsNoTracking();
        if (!string.IsNullOrEmpty(userId))
        {
            query = query.Where(f => f.UserId == userId);
        }

        if (minScore is { } minimum)
        {
            query = query.Where(f => f.Score >= minimum);
        }

        var rows = await query.OrderByDescending(f => f.Score).ThenByDescending(f => f.WindowStartTicks).Take(limit ?? 100)
            .Select(f => f.Json).ToListAsync(cancellationToken);
        return TypedResults.Ok(rows.Select(json => JsonDocument.Parse(json).RootElement.Clone()).ToList());
    }

    private static ProblemHttpResult TooLarge(string detail) =>
        TypedResults.Problem(title: "The batch is too large.", detail: detail, statusCode: StatusCodes.Status413PayloadTooLarge);
}
