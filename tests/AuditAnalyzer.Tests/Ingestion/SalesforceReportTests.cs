using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Ingestion;

namespace CrmSecurity.AuditAnalyzer.Tests.Ingestion;

/// <summary>
/// Salesforce Report and ReportExport event log files, with the columns the Object Reference documents for them
/// (EventLogFile Supported Event Types, "Report Event Type" and "Report Export Event Type", API 262.0), read as a
/// folder is read by <c>analyze</c>: merged, joined by REQUEST_ID, ordered.
/// </summary>
public sealed class SalesforceReportTests : IDisposable
{
    /// <summary>Every documented field of the Report event type.</summary>
    internal const string ReportHeader =
        "\"EVENT_TYPE\",\"TIMESTAMP\",\"REQUEST_ID\",\"ORGANIZATION_ID\",\"USER_ID\",\"RUN_TIME\",\"CPU_TIME\",\"URI\",\"SESSION_KEY\",\"LOGIN_KEY\",\"USER_TYPE\"," +
        "\"REQUEST_STATUS\",\"DB_TOTAL_TIME\",\"ENTITY_NAME\",\"DISPLAY_TYPE\",\"RENDERING_TYPE\",\"REPORT_ID\",\"ROW_COUNT\",\"NUMBER_EXCEPTION_FILTERS\"," +
        "\"NUMBER_COLUMNS\",\"AVERAGE_ROW_SIZE\",\"SORT\",\"DB_BLOCKS\",\"DB_CPU_TIME\",\"NUMBER_BUCKETS\",\"UI_NUMBER_COLUMNS\",\"TIMESTAMP_DERIVED\"," +
        "\"USER_ID_DERIVED\",\"CLIENT_IP\",\"URI_ID_DERIVED\",\"REPORT_ID_DERIVED\",\"ORIGIN\"";

    /// <summary>Every documented field of the Report Export event type: URI, no REPORT_ID, ENTITY_NAME or ROW_COUNT.</summary>
    internal const string ReportExportHeader =
        "\"EVENT_TYPE\",\"TIMESTAMP\",\"REQUEST_ID\",\"ORGANIZATION_ID\",\"USER_ID\",\"RUN_TIME\",\"CPU_TIME\",\"URI\",\"SESSION_KEY\",\"LOGIN_KEY\"," +
        "\"REPORT_DESCRIPTION\",\"CLIENT_INFO\",\"TIMESTAMP_DERIVED\",\"USER_ID_DERIVED\",\"CLIENT_IP\",\"URI_ID_DERIVED\"";

    internal const string LoginHeader =
        "\"EVENT_TYPE\",\"TIMESTAMP\",\"REQUEST_ID\",\"ORGANIZATION_ID\",\"USER_ID\",\"USER_NAME\",\"LOGIN_STATUS\",\"SOURCE_IP\",\"TIMESTAMP_DERIVED\",\"USER_ID_DERIVED\",\"CLIENT_IP\"";

    internal const string UriHeader =
        "\"EVENT_TYPE\",\"TIMESTAMP\",\"REQUEST_ID\",\"ORGANIZATION_ID\",\"USER_ID\",\"URI\",\"SESSION_KEY\",\"TIMESTAMP_DERIVED\",\"USER_ID_DERIVED\",\"CLIENT_IP\"";

    internal const string Org = "00D000000000123";
    internal const string Ann = "005000000000001";
    internal const string ContactReport = "00O5e000008AbCd";

    private readonly string _folder = Directory.CreateTempSubdirectory("crm-analyzer-sfdc-").FullName;

    /// <summary>A Report row (UTC time, request id, object, rows, ORIGIN, DISPLAY_TYPE, RENDERING_TYPE).</summary>
    internal static string ReportRow(DateTime at, string request, string entity, long rows, string origin, string display = "S", string rendering = "", string user = Ann, string status = "S") =>
        $"\"Report\",\"{at:yyyyMMddHHmmss.fff}\",\"{request}\",\"{Org}\",\"{user}\",\"912\",\"340\",\"/{ContactReport}\",\"K1\",\"L1\",\"Standard\"," +
        $"\"{status}\",\"81250000\",\"{entity}\",\"{display}\",\"{rendering}\",\"{ContactReport}\",\"{rows}\",\"0\",\"12\",\"410\",\"\",\"2200\",\"301\",\"0\",\"12\"," +
        $"\"{at:yyyy-MM-ddTHH:mm:ss.fffZ}\",\"{user}AAA\",\"10.1.2.3\",\"\",\"{ContactReport}AAA\",\"{origin}\"";

    /// <summary>A ReportExport row as the Object Reference documents it: the report is known only by its URI.</summary>
    internal static string ReportExportRow(DateTime at, string request, string user = Ann) =>
        $"\"ReportExport\",\"{at:yyyyMMddHHmmss.fff}\",\"{request}\",\"{Org}\",\"{user}\",\"20412\",\"9120\",\"/{ContactReport}?export=1&enc=UTF-8&xf=csv\",\"K1\",\"L1\"," +
        $"\"All contacts\",\"Lightning\",\"{at:yyyy-MM-ddTHH:mm:ss.fffZ}\",\"{user}AAA\",\"10.1.2.3\",\"\"";

    internal static string LoginRow(DateTime at, string request, string user = Ann) =>
        $"\"Login\",\"{at:yyyyMMddHHmmss.fff}\",\"{request}\",\"{Org}\",\"{user}\",\"ann@acme.test\",\"LOGIN_NO_ERROR\",\"10.1.2.3\",\"{at:yyyy-MM-ddTHH:mm:ss.fffZ}\",\"{user}AAA\",\"10.1.2.3\"";

    internal static string UriRow(DateTime at, string request, string user = Ann) =>
        $"\"URI\",\"{at:yyyyMMddHHmmss.fff}\",\"{request}\",\"{Org}\",\"{user}\",\"/0035e000001XyZq\",\"K1\",\"{at:yyyy-MM-ddTHH:mm:ss.fffZ}\",\"{user}AAA\",\"10.1.2.3\"";

    private static DateTime At(int day, int hour, int minute, int second = 0) => new(2026, 3, day, hour, minute, second, DateTimeKind.Utc);

    private void Write(string name, string header, params IEnumerable<string> rows)
    {
        var path = Path.Combine(_folder, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllLines(path, [header, .. rows]);
    }

    private (List<AccessEvent> Events, IngestionReport Report) ReadFolder(TimeSpan? lateness = null)
    {
        var report = new IngestionReport();
        using var input = new EventInput(EventInput.FindFiles(_folder), report, new StringPool(), _folder);
        var ordering = new EventOrdering(lateness ?? TimeSpan.FromMinutes(60), report);
        var events = new List<AccessEvent>();
        while (input.TryRead(out var e))
        {
            ordering.Add(e, events);
        }

        ordering.Complete(events);
        return (events, report);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_ReportExport_and_the_Report_row_of_its_REQUEST_ID_are_one_export_of_the_reports_rows_and_object(bool exportRowFirst)
    {
        var export = At(2, 2, 24, exportRowFirst ? 1 : 3);
        Write("2026-03-02_Login.csv", LoginHeader, LoginRow(At(2, 2, 20), "L0"));
        Write("2026-03-02_ReportExport.csv", ReportExportHeader, ReportExportRow(export, "4exLFFQZ1234"));
        Write("2026-03-02_Report.csv", ReportHeader,
            ReportRow(At(2, 2, 24, 2), "4exLFFQZ1234", "Contact", 60_000, "ReportExported"),
            ReportRow(At(2, 9, 0), "4exLFFQZ9999", "Account", 40, "ReportRunFromLightning"));
        Write("2026-03-02_URI.csv", UriHeader, UriRow(At(2, 2, 23), "U1"), UriRow(At(2, 2, 24, 2), "U2"), UriRow(At(2, 3, 0), "U3"));

        var (events, report) = ReadFolder(TimeSpan.Zero);

        var exports = events.Where(e => e.Action == AccessAction.Export).ToList();
        var joined = Assert.Single(exports);
        Assert.Equal(("contact", 60_000L, ContactReport, export), (joined.Entity, joined.RecordCount, joined.RecordId, joined.Timestamp.UtcDateTime));
        Assert.Equal(("sf:ReportExport:4exLFFQZ1234", Ann, EventOutcome.Success), (joined.EventId, joined.UserId, joined.Outcome));
        Assert.Contains("ORIGIN=ReportExported", joined.Details, StringComparison.Ordinal);
        // The Report row of the export is not scored again as a run; the other report run is.
        Assert.Equal([("account", 40L)], events.Where(e => e.Action == AccessAction.ReportRun).Select(e => (e.Entity, e.RecordCount)));
        Assert.Equal(events.OrderBy(e => e.UtcTicks).Select(e => e.EventId), events.Select(e => e.EventId));
        Assert.Equal(0, report.RejectedTotal);
        Assert.Equal(6, events.Count); // 7 rows, two of them one event
    }

    [Theory]
    [InlineData("ReportExported", "S", "", "export")] // a Formatted Report or XLSX export from Lightning: only a Report row
    [InlineData("ReportExportedAsynchronously", "S", "", "export")]
    [InlineData("ReportExportedUsingExcelConnector", "H", "", "export")]
    [InlineData("ReportRunFromClassic", "S", "X", "export")] // Classic: the output format says Excel
    [InlineData("ReportRunFromClassic", "S", "C", "export")]
    [InlineData("ReportRunFromClassic", "S", "P", "export")] // printable view
    [InlineData("ReportRunFromLightning", "S", "", "report_run")]
    [InlineData("ReportRunFromClassic", "H", "W", "report_run")]
    [InlineData("DashboardComponentUpdated", "D", "", "report_run")]
    [InlineData("ReportPreviewed", "S", "", "report_run")]
    [InlineData("", "", "", "report_run")]
    public void A_Report_row_alone_is_an_export_when_its_ORIGIN_or_RENDERING_TYPE_says_so_and_a_run_otherwise(string origin, string display, string rendering, string action)
    {
        Write("2026-03-02_Report.csv", ReportHeader, ReportRow(At(2, 14, 5), "4exLFFQZ5555", "Contact", 2_500, origin, display, rendering));

        var (events, report) = ReadFolder();

        var e = Assert.Single(events);
        Assert.Equal((action, "contact", 2_500L, ContactReport), (AccessActions.Name(e.Action), e.Entity, e.RecordCount, e.RecordId));
        Assert.Equal("sf:Report:4exLFFQZ5555", e.EventId);
        Assert.Empty(report.Warnings);
    }

    [Fact]
    public void A_failed_or_refused_report_request_is_not_a_successful_export()
    {
        Write("2026-03-02_Report.csv", ReportHeader,
            ReportRow(At(2, 14, 5), "R-F", "Contact", 60_000, "ReportExported", status: "F"),
            ReportRow(At(2, 14, 6), "R-A", "Contact", 60_000, "ReportExported", status: "A"));

        var (events, _) = ReadFolder();

        Assert.Equal([EventOutcome.Error, EventOutcome.Denied], events.Select(e => e.Outcome));
        Assert.All(events, e => Assert.False(e.Succeeded));
    }

    [Fact]
    public void A_ReportExport_without_its_Report_row_is_an_export_of_unknown_size_scored_as_one_record_with_a_warning()
    {
        Write("2026-03-02_ReportExport.csv", ReportExportHeader, ReportExportRow(At(2, 2, 24), "4exLFFQZ7777"));
        // A Report row of another request, and one of the same request too late to be the same transaction.
        Write("2026-03-02_Report.csv", ReportHeader,
            ReportRow(At(2, 2, 25), "4exLFFQZ8888", "Contact", 10, "ReportRunFromLightning"),
            ReportRow(At(2, 2, 24) + SalesforceReportJoin.Window + TimeSpan.FromMinutes(1), "4exLFFQZ7777", "Lead", 20, "ReportRunFromLightning"));

        var (events, report) = ReadFolder();

        var export = Assert.Single(events, e => e.Action == AccessAction.Export);
        Assert.Equal(("report", 1L, ContactReport), (export.Entity, export.RecordCount, export.RecordId));
        Assert.Equal("row count unknown: no Report row with REQUEST_ID 4exLFFQZ7777", export.Details);
        Assert.Equal(2, events.Count(e => e.Action == AccessAction.ReportRun));
        var warning = report.Warnings[SalesforceReportJoin.UnjoinedWarning];
        Assert.StartsWith("2026-03-02_ReportExport.csv:2: ReportExport row (REQUEST_ID 4exLFFQZ7777) has no Report row", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Copies_of_a_joined_pair_in_overlapping_files_are_dropped_as_duplicates_not_scored_as_runs()
    {
        // An hourly and a daily file of the same day hold the same rows.
        foreach (var copy in new[] { "daily", "hourly" })
        {
            Write($"{copy}_ReportExport.csv", ReportExportHeader, ReportExportRow(At(2, 2, 24, 3), "4exLFFQZ1234"));
            Write($"{copy}_Report.csv", ReportHeader, ReportRow(At(2, 2, 24, 2), "4exLFFQZ1234", "Contact", 60_000, "ReportExported"));
        }

        var (events, report) = ReadFolder();

        var export = Assert.Single(events);
        Assert.Equal((AccessAction.Export, 60_000L), (export.Action, export.RecordCount));
        Assert.Equal(2, report.Count(RejectReason.Duplicate));
    }

    [Fact]
    public void A_folder_of_per_type_per_day_files_whose_rows_interleave_in_time_and_are_out_of_order_loses_no_row_as_late()
    {
        // Three days of four event types, one file each (as EventLogFile gives them), named type first so that
        // the name order is not the time order; rows of every file interleave with every other file's, and most
        // files are not in time order themselves.
        var rows = 0;
        var pairs = 0;
        foreach (var day in new[] { 2, 3, 4 })
        {
            var logins = new List<string>();
            var uris = new List<string>();
            var reports = new List<string>();
            var exports = new List<string>();
            for (var minute = 0; minute < 600; minute += 7)
            {
                var at = At(day, 8, 0).AddMinutes(minute);
                logins.Add(LoginRow(at, $"L{day}-{minute}"));
                uris.Add(UriRow(at.AddSeconds(20), $"U{day}-{minute}"));
                uris.Add(UriRow(at.AddSeconds(40), $"V{day}-{minute}"));
                reports.Add(ReportRow(at.AddSeconds(30), $"R{day}-{minute}", "Contact", minute, minute % 21 == 0 ? "ReportExported" : "ReportRunFromLightning"));
                if (minute % 21 == 0)
                {
                    // Details Only export: the ReportExport row is logged a moment after its Report row.
                    exports.Add(ReportExportRow(at.AddSeconds(31), $"R{day}-{minute}"));
                    pairs++;
                }
            }

            // Rows of a file are not in time order either: newest first, or every other row, or in order.
            Write($"Login/2026-03-0{day}.csv", LoginHeader, logins);
            Write($"URI/2026-03-0{day}.csv", UriHeader, uris.AsEnumerable().Reverse());
            Write($"Report/2026-03-0{day}.csv", ReportHeader, reports.Where((_, i) => i % 2 == 0).Concat(reports.Where((_, i) => i % 2 == 1)));
            Write($"ReportExport/2026-03-0{day}.csv", ReportExportHeader, exports.AsEnumerable().Reverse());
            rows += logins.Count + uris.Count + reports.Count + exports.Count;
        }

        var (events, report) = ReadFolder(TimeSpan.Zero);

        Assert.Equal(0, report.Count(RejectReason.Late));
        Assert.Equal(0, report.RejectedTotal);
        Assert.Equal(rows, report.EventsParsed);
        Assert.Equal(rows - pairs, events.Count);
        Assert.Equal(pairs, events.Count(e => e.Action == AccessAction.Export));
        Assert.Empty(report.Warnings);
        Assert.True(events.Zip(events.Skip(1)).All(p => p.First.UtcTicks <= p.Second.UtcTicks), "the merged stream is in timestamp order");
    }

    [Theory]
    [InlineData("/00O5e000008AbCd?export=1&enc=UTF-8&xf=xls", "00O5e000008AbCd")]
    [InlineData("/00O5e000008AbCdEAA", "00O5e000008AbCdEAA")]
    [InlineData("/lightning/r/Report/00O5e000008AbCdEAA/view?queryScope=userFolders", "00O5e000008AbCdEAA")]
    [InlineData("/servlet/PrintableViewDownloadServlet", null)]
    [InlineData("/0035e000008AbCd", null)] // a contact, not a report
    [InlineData("", null)]
    public void The_report_id_is_read_from_a_report_pages_uri(string uri, string? expected)
    {
        Assert.Equal(expected, SalesforceEventParser.ReportIdInUri(System.Text.Encoding.UTF8.GetBytes(uri)));
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
