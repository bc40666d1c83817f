using System.Globalization;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Identity.Pages.Shared;
using Microsoft.AspNetCore.Mvc;

namespace CrmSecurity.Identity.Pages.Admin;

/// <summary>
/// The audit trail viewer: filter, page through and export the admin audit trail, each change shown as a diff of before
/// and after, with the chain's verify status on top. Uses the same <see cref="AuditTrailViewer"/> (rights, access events)
/// and the same query parameters as <c>/admin/api/audit</c>; times are in the person's own time zone, UTC on hover.
/// </summary>
internal sealed class AuditModel(AuditTrailViewer viewer) : AdminPageModel
{
    private const string LocalInput = "yyyy-MM-dd'T'HH:mm";

    public TimeZoneInfo Zone { get; private set; } = TimeZoneInfo.Utc;

    public AuditTrailFilter Filter { get; private set; } = new();

    public IReadOnlyList<string> Actions { get; private set; } = [];

    public IReadOnlyList<EntryRow> Entries { get; private set; } = [];

    public long? NextAfter { get; private set; }

    public AuditTrailCheck? Check { get; private set; }

    public bool CanExport { get; private set; }

    /// <summary>The from/to pickers show the filter's times on the person's own wall clock.</summary>
    public string LocalValue(DateTimeOffset? time) =>
        time is { } t ? TimeZoneInfo.ConvertTime(t, Zone).ToString(LocalInput, CultureInfo.InvariantCulture) : "";

    public string Link(long? after) =>
        "/admin/audit?" + (Filter with { After = after ?? 0 }).ToQuery(withPaging: true);

    public string ExportLink => "/admin/audit?handler=export" + (Filter.ToQuery() is { Length: > 0 } query ? "&" + query : "");

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (Guard.Require(SystemEntities.AuditTrail, CrmAction.Read) is { } denied)
        {
            return new ObjectResult(denied.Detail) { StatusCode = StatusCodes.Status403Forbidden };
        }

        Zone = PersonTimeZone.Of(Guard.CallerInfo.Definition.ZoneInfo);
        Actions = await viewer.ActionsAsync(cancellationToken);
        CanExport = AuditTrailViewer.CanExport(Guard);
        (Check, _) = await viewer.VerifyAsync(Guard, cancellationToken);

        var (filter, bad) = AuditTrailFilter.Parse(Query, Zone);
        if (bad is not null)
        {
            return Refused(bad);
        }

        Filter = filter!;
        var (page, problem) = await viewer.ListAsync(Guard, Filter, cancellationToken);
        if (problem is not null)
        {
            return Refused(problem);
        }

        Entries = [.. page!.Entries.Select(e => new EntryRow(e, TimeZoneInfo.ConvertTimeFromUtc(e.Timestamp, Zone), AuditJsonDiff.Compare(e.Before, e.After)))];
        NextAfter = page.NextAfter;
        return Page();
    }

    /// <summary>The same export as <c>/admin/api/audit/export</c>, for the signed-in person's cookie.</summary>
    public async Task<IActionResult> OnGetExportAsync(CancellationToken cancellationToken)
    {
        var (filter, bad) = AuditTrailFilter.Parse(Query, PersonTimeZone.Of(Guard.CallerInfo.Definition.ZoneInfo));
        if (bad is not null)
        {
            return new ObjectResult(bad.ToProblemDetails()) { StatusCode = bad.Status };
        }

        var (entries, problem) = await viewer.ExportAsync(Guard, filter!, cancellationToken);
        if (problem is not null)
        {
            return new ObjectResult(problem.Detail) { StatusCode = problem.Status };
        }

        Response.ContentType = AuditTrailViewer.JsonLines;
        Response.Headers.ContentDisposition = $"attachment; filename={AuditTrailViewer.ExportFileName}";
        await AuditTrailViewer.WriteLinesAsync(Response.Body, entries!, cancellationToken);
        return new EmptyResult();
    }

    private string? Query(string name) => Request.Query.TryGetValue(name, out var values) ? values.ToString() : null;

    /// <summary>One entry as the table shows it: the time on the person's clock and before/after as a diff.</summary>
    internal sealed record EntryRow(AuditEntryView Entry, DateTime LocalTime, IReadOnlyList<AuditDiffLine> Diff);
}
