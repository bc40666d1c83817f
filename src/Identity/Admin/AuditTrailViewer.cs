using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// Reading the admin audit trail, for the admin API and the admin page alike: list a filtered page, export the filtered
/// entries, and verify the chain. Each read needs the caller's admin privilege on the audit trail in the model
/// (<c>read</c>; <c>export</c> for an export), which is organisation-wide, so a business-unit admin never reaches it.
/// Every read is itself an access event (<c>read</c> or <c>export</c> of <c>audit_trail</c>), so whoever looks, an auditor
/// investigating their own changes included, leaves a trace the analyzer and the SIEM see.
/// </summary>
internal sealed class AuditTrailViewer(IdentityStore store, IAuditTrailVerifier verifier, AccessEvents events)
{
    // design.md's shared access-event vocabulary: reading and exporting records.
    private const string ReadAction = "read";
    private const string ExportAction = "export";

    /// <summary>JSON Lines (jsonlines.org): one JSON value per line, UTF-8, each line ended by \n.</summary>
    public const string JsonLines = "application/jsonl";

    public const string ExportFileName = "audit-trail.jsonl";

    private static readonly JsonSerializerOptions LineJson = new(JsonSerializerDefaults.Web);

    public static async Task WriteLinesAsync(Stream body, IAsyncEnumerable<AuditEntryView> entries, CancellationToken cancellationToken)
    {
        await foreach (var entry in entries.WithCancellation(cancellationToken))
        {
            await JsonSerializer.SerializeAsync(body, entry, LineJson, cancellationToken);
            await body.WriteAsync("\n"u8.ToArray(), cancellationToken);
        }
    }

    public async Task<(AuditTrailPage? Page, AdminProblem? Problem)> ListAsync(AdminGuard guard, AuditTrailFilter filter, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.AuditTrail, CrmAction.Read) is { } denied)
        {
            return (null, denied);
        }

        var rows = await Query(filter).Take(filter.Limit + 1).ToListAsync(cancellationToken);
        var entries = rows.Take(filter.Limit).Select(View).ToList();
        long? next = rows.Count > filter.Limit ? entries[^1].Sequence : null;
        await RecordAsync(guard, ReadAction, $"{filter.Describe()}; {entries.Count} entries", cancellationToken);
        return (new AuditTrailPage(entries, next), null);
    }

    /// <summary>
    /// Every entry the filter matches after <see cref="AuditTrailFilter.After"/>, in sequence order, read as it is written
    /// out (the limit pages the list; an export is the whole filtered trail).
    /// </summary>
    public async Task<(IAsyncEnumerable<AuditEntryView>? Entries, AdminProblem? Problem)> ExportAsync(AdminGuard guard, AuditTrailFilter filter, CancellationToken cancellationToken)
    {
        if ((guard.Require(SystemEntities.AuditTrail, CrmAction.Read) ?? guard.Require(SystemEntities.AuditTrail, CrmAction.Export)) is { } denied)
        {
            return (null, denied);
        }

        await RecordAsync(guard, ExportAction, filter.Describe(), cancellationToken);
        return (Stream(filter, cancellationToken), null);
    }

    public async Task<(AuditTrailCheck? Check, AdminProblem? Problem)> VerifyAsync(AdminGuard guard, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.AuditTrail, CrmAction.Read) is { } denied)
        {
            return (null, denied);
        }

        var check = await verifier.VerifyAsync(null, cancellationToken);
        await RecordAsync(guard, ReadAction, check.Intact ? "verify: intact" : $"verify: broken at {check.FirstBroken}", cancellationToken);
        return (check, null);
    }

    /// <summary>The actions written so far, for the page's action filter.</summary>
    public async Task<IReadOnlyList<string>> ActionsAsync(CancellationToken cancellationToken) =>
        await store.AuditTrail.AsNoTracking().Select(e => e.Action).Distinct().OrderBy(a => a).ToListAsync(cancellationToken);

    public static bool CanExport(AdminGuard guard) =>
        guard.Require(SystemEntities.AuditTrail, CrmAction.Read) is null && guard.Require(SystemEntities.AuditTrail, CrmAction.Export) is null;

    private async IAsyncEnumerable<AuditEntryView> Stream(AuditTrailFilter filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var entry in Query(filter).AsAsyncEnumerable().WithCancellation(cancellationToken))
        {
            yield return View(entry);
        }
    }

    private IQueryable<AuditEntryRecord> Query(AuditTrailFilter filter)
    {
        var query = store.AuditTrail.AsNoTracking().Where(e => e.Sequence > filter.After);
        if (filter.Actor is { } actor)
        {
            query = query.Where(e => e.ActorId == actor || e.ActorName == actor);
        }

        if (filter.Action is { } action)
        {
            query = query.Where(e => e.Action == action);
        }

        if (filter.TargetKind is { } kind)
        {
            query = query.Where(e => e.TargetKind == kind);
        }

        if (filter.Target is { } target)
        {
            query = query.Where(e => e.TargetId == target || e.TargetName == target);
        }

        if (filter.From is { } from)
        {
            query = query.Where(e => e.Timestamp >= from);
        }

        if (filter.To is { } to)
        {
            query = query.Where(e => e.Timestamp < to);
        }

        return query.OrderBy(e => e.Sequence);
    }

    private static AuditEntryView View(AuditEntryRecord entry) => new(
        entry.Sequence, entry.Timestamp.UtcDateTime, entry.ActorId, entry.ActorName, entry.ClientId, entry.SourceIp, entry.Action,
        new AuditTargetView(entry.TargetKind, entry.TargetId, entry.TargetName), Json(entry.Before), Json(entry.After), entry.ModelVersion);

    /// <summary>Before and after are JSON as written; a value that no longer parses (changed behind the service's back) is shown as text.</summary>
    private static JsonElement? Json(string? text)
    {
        if (text is null)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return JsonSerializer.SerializeToElement(text);
        }
    }

    private ValueTask RecordAsync(AdminGuard guard, string action, string details, CancellationToken cancellationToken) =>
        events.WriteAsync(new AccessEvent
        {
            Timestamp = events.Time.GetUtcNow(),
            UserId = guard.CallerInfo.Id,
            UserName = guard.CallerInfo.UserName,
            ClientId = guard.Actor.ClientId,
            SourceIp = guard.Actor.SourceIp,
            Action = action,
            Entity = SystemEntities.AuditTrail,
            Privilege = $"{SystemEntities.AuditTrail}:{action}",
            Details = details,
        }, cancellationToken);
}

internal sealed record AuditTrailPage(
    [property: JsonPropertyName("entries")] IReadOnlyList<AuditEntryView> Entries,
    [property: JsonPropertyName("next_after")] long? NextAfter);

internal sealed record AuditTargetView(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("name")] string Name);

/// <summary>One audit entry as the API, the export and the page show it; the timestamp is UTC (kind Utc, so JSON writes a Z).</summary>
internal sealed record AuditEntryView(
    [property: JsonPropertyName("sequence")] long Sequence,
    [property: JsonPropertyName("timestamp")] DateTime Timestamp,
    [property: JsonPropertyName("actor_id")] string ActorId,
    [property: JsonPropertyName("actor_name")] string ActorName,
    [property: JsonPropertyName("client_id")] string? ClientId,
    [property: JsonPropertyName("source_ip")] string? SourceIp,
    [property: JsonPropertyName("action")] string Action,
    [property: JsonPropertyName("target")] AuditTargetView Target,
    [property: JsonPropertyName("before")] JsonElement? Before,
    [property: JsonPropertyName("after")] JsonElement? After,
    [property: JsonPropertyName("model_version")] long ModelVersion);

internal sealed record AuditVerifyView(
    [property: JsonPropertyName("intact")] bool Intact,
    [property: JsonPropertyName("entries")] long Entries,
    [property: JsonPropertyName("head")] string? Head,
    [property: JsonPropertyName("first_broken")] long? FirstBroken,
    [property: JsonPropertyName("problem")] string? Problem);
