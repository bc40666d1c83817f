using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.AuditAnalyzer.Service.EventLog;
using CrmSecurity.AuditAnalyzer.Service.IngestionWrites;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>The reply to a batch: what was stored, what was already there, and every rejected line.</summary>
internal sealed record BatchResponse(int Lines, int Stored, int Duplicates, int Rejected, IReadOnlyList<LineError> Errors);

/// <summary>HTTP endpoints of live ingestion and the findings list.</summary>
internal static class LiveEndpoints
{
    /// <summary>
    /// Maps <c>POST /analyzer/events</c> (scope events:write), <c>GET /analyzer/findings</c> (scope findings:read) and the
    /// review API under <c>/analyzer/review</c> (scope findings:read, and the caller's review rights in the host's model).
    /// </summary>
    internal static IEndpointRouteBuilder Map(IEndpointRouteBuilder endpoints)
    {
        // Bearer tokens only, no cookies: no cross-site request can carry the credential, so no antiforgery token.
        var group = endpoints.MapGroup("/analyzer").DisableAntiforgery();
        group.MapPost("/events", IngestAsync).RequireAuthorization(LiveModule.WritePolicy);
        group.MapGet("/findings", ListFindingsAsync).RequireAuthorization(LiveModule.ReadPolicy);
        Review.ReviewEndpoints.Map(endpoints);
        return endpoints;
    }

    internal static async Task<Results<Ok<BatchResponse>, ValidationProblem, ProblemHttpResult>> IngestAsync(
        HttpContext http, IEventLog log, IOptions<LiveOptions> options, LiveDirectory directory, IngestionGate gate, ScoringLag lag, TimeProvider time,
        CancellationToken cancellationToken)
    {
        var settings = options.Value;

        // Who sends, and on whom it may report, comes from the client's own token, never from the body: the stored
        // sender is the authenticated client, whatever a line says in client_id (design.md, trust boundaries).
        if (SenderBinding.For(http.User, settings, directory.Current, out var refusal) is not { } binding)
        {
            return TypedResults.Problem(title: "This token cannot send access events.", detail: refusal, statusCode: StatusCodes.Status403Forbidden);
        }

        var encoding = http.Request.Headers.ContentEncoding.ToString();
        if (encoding.Length > 0 && !encoding.Trim().Equals("gzip", StringComparison.OrdinalIgnoreCase) && !encoding.Trim().Equals("identity", StringComparison.OrdinalIgnoreCase))
        {
            // RFC 9110 §15.5.16: an encoding we do not decode is refused, not stored as garbage.
            return TypedResults.Problem(title: "The content encoding is not supported.", detail: "Content-Encoding must be gzip or left out.",
                statusCode: StatusCodes.Status415UnsupportedMediaType);
        }

        // Backpressure from scoring (AuditAnalyzer:Live:MaxScoringLag): while the oldest unscored event has waited longer,
        // the sender holds the batch, so findings do not fall further behind their evidence (RFC 9110 §15.6.4, §10.2.3).
        if (lag.Refusing is { } behind)
        {
            http.Response.Headers.RetryAfter = gate.RetryAfterSeconds;
            return TypedResults.Problem(title: "Scoring is behind.", detail: lag.Explain(behind, gate.RetryAfterSeconds), statusCode: StatusCodes.Status503ServiceUnavailable);
        }

        // Ingestion's own bounded share of the host, taken before the body is read so that buffers, threads and
        // connections stay bounded too; when it is full the sender is told to come back (RFC 6585 §4, RFC 9110 §10.2.3).
        using var slot = await gate.EnterAsync(cancellationToken);
        if (slot is null)
        {
            http.Response.Headers.RetryAfter = gate.RetryAfterSeconds;
            return TypedResults.Problem(title: "Ingestion is busy.",
                detail: $"More batches are being stored than AuditAnalyzer:Live:MaxConcurrentBatches and MaxQueuedBatches allow. Send this batch again after {gate.RetryAfterSeconds} s; events already stored are not stored twice.",
                statusCode: StatusCodes.Status429TooManyRequests);
        }

        var limit = settings.MaxBatchBytes;
        var (body, length) = await BatchBody.ReadAsync(http, limit, cancellationToken);
        if (body is null)
        {
            return TooLarge($"The batch is larger than {limit} bytes (AuditAnalyzer:Live:MaxBatchBytes). Split it into smaller batches.");
        }

        (List<StoredEventRow> Rows, List<LineError> Errors, int Lines, int Duplicates)? parsed;
        try
        {
            if (BatchBody.IsGzip(encoding, body.AsSpan(0, length)))
            {
                var inflated = BatchBody.Inflate(body, length, settings.MaxDecompressedBatchBytes);
                if (inflated.Length < 0)
                {
                    return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = ["The body is not a valid gzip stream (RFC 1952)."] },
                        title: "The batch cannot be read.");
                }

                if (inflated.Bytes is null)
                {
                    return TooLarge($"The batch inflates to more than {settings.MaxDecompressedBatchBytes} bytes (AuditAnalyzer:Live:MaxDecompressedBatchBytes). Split it into smaller batches.");
                }

                BatchBody.Return(body);
                (body, length) = (inflated.Bytes, inflated.Length);
            }

            parsed = EventBatches.Parse(body, length, binding.ClientId, settings, time.GetUtcNow(), binding);
        }
        finally
        {
            // Parsing copied what it keeps into strings: the buffer goes back to the pool before the (slower) store.
            BatchBody.Return(body);
        }

        if (parsed is not { } batch)
        {
            return TooLarge($"The batch has more than {settings.MaxBatchLines} lines (AuditAnalyzer:Live:MaxBatchLines). Split it into smaller batches.");
        }

        if (batch.Rows.Count == 0 && batch.Errors.Count > 0)
        {
            return TypedResults.ValidationProblem(
                batch.Errors.GroupBy(e => $"line {e.Line}").ToDictionary(g => g.Key, g => g.Select(e => $"{e.Reason}: {e.Message}").ToArray()),
                title: "No line of the batch is a valid access event.");
        }

        int stored;
        try
        {
            // The batch is appended to the ingestion log. On a database server (or a broker) the slot goes to the next batch
            // as soon as the batch is queued, and that batch is read and parsed while this one is written (the write's work is
            // mostly the server's). On SQLite the write runs on this host's cores too, so the slot is kept until the commit:
            // MaxConcurrentBatches keeps bounding ingestion's share of the host. Durable when AppendAsync returns: a 200
            // means every stored event is durable.
            stored = await log.AppendAsync(batch.Rows, slot.Dispose, cancellationToken);
            EventBatches.CountAppended(batch.Rows, stored);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && gate.IsStoreUnavailable(e))
        {
            http.Response.Headers.RetryAfter = gate.RetryAfterSeconds;
            return TypedResults.Problem(title: "The event store is unavailable.",
                detail: $"Nothing of this batch is acknowledged. Send it again after {gate.RetryAfterSeconds} s; events already stored are not stored twice.",
                statusCode: StatusCodes.Status503ServiceUnavailable);
        }

        return TypedResults.Ok(new BatchResponse(batch.Lines, stored, batch.Duplicates + (batch.Rows.Count - stored), batch.Errors.Count, batch.Errors));
    }

    /// <summary>
    /// Findings, highest score first, as the caller's model rights allow (read on <c>audit_finding</c>): pseudonymous by
    /// default. Real identities only with <c>identities=true</c>, the review right (the right to reveal) and a
    /// reason (the <c>Reveal-Reason</c> header), each released finding written to the audit trail first (OWASP ASVS 4.0.3 V4.1.3, V7.1.3, V8.3.5).
    /// </summary>
    internal static async Task<IResult> ListFindingsAsync(
        HttpContext http, IReviewAccess access, ReviewActions actions,
        [FromQuery(Name = "user")] string? user, [FromQuery(Name = "user_id")] string? userId, [FromQuery(Name = "min_score")] double? minScore, int? limit,
        bool? identities, CancellationToken cancellationToken)
    {
        var caller = access.Identify(http.User, http.Connection.RemoteIpAddress?.ToString());
        string? reason = null;
        if ((ReviewActions.MayRead(caller) ?? IdentityRelease.ReadReason(http.Request, out reason)) is { } refused)
        {
            return ReviewEndpoints.Problem(refused);
        }

        if (limit is < 1 or > 1000)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = ["limit must be between 1 and 1000."] });
        }

        var release = identities == true;
        if (IdentityRelease.Check(caller!, release, reason) is { } problem)
        {
            return ReviewEndpoints.Problem(problem);
        }

        if (!string.IsNullOrEmpty(userId) && !release)
        {
            // A user id filter answers "does this person have findings?" without a reveal: a guess tested for free.
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["user_id"] = ["user_id filters only together with identities=true (an audited release); filter by pseudonym with user."],
            });
        }

        if (!string.IsNullOrEmpty(user) && !Review.Pseudonyms.LooksLikeOne(user))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["user"] = ["user is a pseudonym as findings show it (user- and 8 hex digits)."] });
        }

        var query = actions.Db.Findings.AsNoTracking();
        if (!string.IsNullOrEmpty(userId))
        {
            query = query.Where(f => f.UserId == userId);
        }

        if (!string.IsNullOrEmpty(user))
        {
            query = query.Where(f => f.Pseudonym == user);
        }

        if (minScore is { } minimum)
        {
            query = query.Where(f => f.Score >= minimum);
        }

        var rows = await query.OrderByDescending(f => f.Score).ThenByDescending(f => f.WindowStartTicks).Take(limit ?? 100).ToListAsync(cancellationToken);
        var key = await actions.PseudonymKeyAsync(cancellationToken);
        var released = release
            ? await actions.ReleaseIdentitiesAsync(caller!, [.. rows.Select(r => (r.Id, r.UserId, r.UserName, IdentityRelease.PseudonymOf(r, key), r.Detector))],
                "GET /analyzer/findings", reason!.Trim(), cancellationToken)
            : new HashSet<string>(StringComparer.Ordinal);
        http.Response.Headers.CacheControl = "no-store";
        return TypedResults.Ok(rows.Select(r => JsonDocument.Parse(IdentityRelease.Json(r, key, released.Contains(r.Id), actions.PeerGroups)).RootElement.Clone()).ToList());
    }

    private static ProblemHttpResult TooLarge(string detail) =>
        TypedResults.Problem(title: "The batch is too large.", detail: detail, statusCode: StatusCodes.Status413PayloadTooLarge);
}
