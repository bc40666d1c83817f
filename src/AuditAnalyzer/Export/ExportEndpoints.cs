using System.Globalization;
using System.Text;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Review;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>A configured push destination: how far it has got and what it refused for good (newest first).</summary>
internal sealed record DestinationStatus(
    string Name, string MinSeverity, DateTimeOffset? DeliveredUpTo, string? LastFindingId, DateTimeOffset? SavedAt, bool RealIdentities, int Failures, IReadOnlyList<FailureView> RecentFailures);

internal sealed record FailureView(string FindingId, DateTimeOffset FindingUpdatedAt, int? Status, string Reason, DateTimeOffset FailedAt);

/// <summary>The pull side of the export: JSON Lines in ECS field names, read incrementally with a cursor.</summary>
public static class ExportEndpoints
{
    /// <summary>Response header with the cursor to send next time (also when nothing new was returned).</summary>
    public const string CursorHeader = "Export-Cursor";

    /// <summary>Response header: "true" when the page was full, so more changes may be waiting.</summary>
    public const string MoreHeader = "Export-More";

    internal const int DefaultLimit = 500;
    internal const int MaxLimit = 5000;

    /// <summary>Maps <c>GET /analyzer/export/findings</c> and <c>GET /analyzer/export/destinations</c> (scope findings:read).</summary>
    internal static IEndpointRouteBuilder Map(IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/analyzer/export").DisableAntiforgery();
        group.MapGet("/findings", ExportFindingsAsync).RequireAuthorization(ExportModule.ReadPolicy);
        group.MapGet("/destinations", ListDestinationsAsync).RequireAuthorization(ExportModule.ReadPolicy);
        return endpoints;
    }

    /// <summary>Each push destination's progress and its permanent failures; no URL or secret is shown. Needs read on audit_finding.</summary>
    internal static async Task<IResult> ListDestinationsAsync(
        HttpContext http, IReviewAccess access, ExportDbContext db, IReadOnlyList<IFindingDestination> destinations, CancellationToken cancellationToken)
    {
        if (ReviewActions.MayRead(access.Identify(http.User, http.Connection.RemoteIpAddress?.ToString())) is { } refused)
        {
            return ReviewEndpoints.Problem(refused);
        }

        var statuses = new List<DestinationStatus>();
        foreach (var destination in destinations)
        {
            var name = destination.Name;
            var cursor = await db.Cursors.AsNoTracking().FirstOrDefaultAsync(c => c.Destination == name, cancellationToken);
            var count = await db.Failures.CountAsync(f => f.Destination == name, cancellationToken);
            var recent = await db.Failures.AsNoTracking().Where(f => f.Destination == name).OrderByDescending(f => f.FailedTicks).Take(20)
                .ToListAsync(cancellationToken);
            statuses.Add(new DestinationStatus(
                name,
                SeverityNames.Name(destination.MinSeverity),
                cursor is null ? null : Time(cursor.UpdatedTicks),
                cursor?.FindingId,
                cursor is null ? null : Time(cursor.SavedTicks),
                destination.RealIdentities,
                count,
                recent.Select(f => new FailureView(f.FindingId, Time(f.FindingUpdatedTicks), f.Status, f.Reason, Time(f.FailedTicks))).ToList()));
        }

        return TypedResults.Ok(statuses);
    }

    private static DateTimeOffset Time(long ticks) => new(ticks, TimeSpan.Zero);

    /// <summary>
    /// The ECS feed, as the caller's model rights allow (read on <c>audit_finding</c>): pseudonymous unless the caller
    /// asks for <c>identities=true</c> with a reason (the <c>Reveal-Reason</c> header) and holds the right to reveal; each finding so released is
    /// written to the audit trail before the page is sent.
    /// </summary>
    internal static async Task<IResult> ExportFindingsAsync(
        HttpContext http, IReviewAccess access, ReviewActions actions, IFindingReviewStates reviews, IOptions<ExportOptions> options, TimeProvider time,
        string? cursor, string? limit, bool? identities, CancellationToken cancellationToken)
    {
        var caller = access.Identify(http.User, http.Connection.RemoteIpAddress?.ToString());
        string? reason = null;
        if ((ReviewActions.MayRead(caller) ?? IdentityRelease.ReadReason(http.Request, out reason) ?? IdentityRelease.Check(caller!, identities == true, reason)) is { } refused)
        {
            return ReviewEndpoints.Problem(refused);
        }

        FeedCursor? after = null;

        // An empty cursor is the start: it is what the header says before there was anything to export.
        if (!string.IsNullOrEmpty(cursor))
        {
            if (!FeedCursor.TryDecode(cursor, out var decoded))
            {
                return TypedResults.ValidationProblem(new Dictionary<string, string[]>
                {
                    ["cursor"] = ["cursor is not a cursor this endpoint returned (the Export-Cursor header); leave it out to start from the beginning."],
                });
            }

            after = decoded;
        }

        var take = DefaultLimit;
        if (limit is not null && (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out take) || take is < 1 or > MaxLimit))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["limit"] = [$"limit must be a whole number from 1 to {MaxLimit}."],
            });
        }

        var settledBefore = time.GetUtcNow() - options.Value.SettleTime;
        var findings = await FindingFeed.ReadAsync(actions.Db, reviews, after, take, settledBefore, cancellationToken);
        var key = await actions.PseudonymKeyAsync(cancellationToken);
        var released = identities == true && findings.Count > 0
            ? await actions.ReleaseIdentitiesAsync(caller!, [.. findings.Select(f => (f.Id, f.Finding.UserId, f.Finding.UserName, string.IsNullOrEmpty(f.Pseudonym) ? Pseudonyms.Of(key, f.Finding.UserId) : f.Pseudonym, f.Finding.Detector))],
                "GET /analyzer/export/findings", reason!.Trim(), cancellationToken)
            : new HashSet<string>(StringComparer.Ordinal);
        var body = new StringBuilder();
        foreach (var finding in findings)
        {
            body.Append(EcsDocument.ToJsonLine(released.Contains(finding.Id) ? finding : finding.Pseudonymous(key, actions.PeerGroups))).Append('\n');
        }

        var next = findings.Count > 0 ? findings[^1].Cursor.Encode() : after?.Encode() ?? "";
        http.Response.Headers[CursorHeader] = next;
        http.Response.Headers[MoreHeader] = findings.Count == take ? "true" : "false";
        http.Response.Headers.CacheControl = "no-store";
        return TypedResults.Text(body.ToString(), "application/x-ndjson", Encoding.UTF8);
    }
}
