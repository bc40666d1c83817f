using System.IO.Compression;
using System.Text;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Ingestion;

namespace CrmSecurity.AuditAnalyzer.Tests.Ingestion;

public sealed class EventFileReaderTests
{
    private static (List<AccessEvent> Events, IngestionReport Report) Read(string text, string name = "events.jsonl", bool gzip = false)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        if (gzip)
        {
            using var compressed = new MemoryStream();
            using (var zip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            {
                zip.Write(bytes);
            }

            bytes = compressed.ToArray();
        }

        var report = new IngestionReport();
        using var reader = new EventFileReader(new MemoryStream(bytes), name, report, new StringPool());
        var events = new List<AccessEvent>();
        while (reader.MoveNext())
        {
            events.Add(reader.Current!);
        }

        return (events, report);
    }

    [Fact]
    public void A_json_line_with_every_field_is_read_into_the_event()
    {
        var (events, report) = Read("""
            {"timestamp":"2026-03-02T09:30:00.250+01:00","action":"read","event_id":"e1","tenant":"acme","user_id":"u1","user_name":"ann","session_id":"s1","source_ip":"10.0.0.1","user_agent":"x","country":"DE","client_id":"crm","entity":"contact","record_id":"r9","record_owner":"u7","record_business_unit":"DACH","record_count":1200,"bytes":5000,"fields":["email","phone"],"outcome":"denied","target_user":"u2","privilege":"contact:export","details":{"note":"structured"}}
            """);

        var e = Assert.Single(events);
        Assert.Equal(new DateTimeOffset(2026, 3, 2, 9, 30, 0, 250, TimeSpan.FromHours(1)), e.Timestamp);
        Assert.Equal(("e1", true, "acme", "u1", "ann", "s1"), (e.EventId, e.HasSourceId, e.Tenant, e.UserId, e.UserName, e.SessionId));
        Assert.Equal(("10.0.0.1", "DE", "crm", "contact", "r9"), (e.SourceIp, e.Country, e.ClientId, e.Entity, e.RecordId));
        Assert.Equal(("u7", "DACH"), (e.RecordOwner, e.RecordBusinessUnit));
        Assert.Equal((1200L, 5000L, 2, EventOutcome.Denied), (e.RecordCount, e.Bytes, e.FieldCount, e.Outcome));
        Assert.Equal((AccessAction.Read, "u2", "contact:export", "(structured)"), (e.Action, e.TargetUser, e.Privilege, e.Details));
        Assert.Equal(0, report.RejectedTotal);
    }

    [Fact]
    public void Malformed_lines_are_reported_with_file_line_and_reason_and_every_valid_line_is_kept()
    {
        var (events, report) = Read("""
            {"timestamp":"2026-03-02T09:00:00Z","user_id":"u1","action":"login"}
            {"timestamp":"2026-03-02T09:01:00Z","user_id":"u1","action":
            {"timestamp":"2026-03-02T09:02:00Z","action":"read"}
            {"timestamp":"2026-02-30T09:03:00Z","user_id":"u1","action":"read"}
            {"timestamp":"2026-03-02T09:04:00","user_id":"u1","action":"read"}
            {"timestamp":"2026-03-02T09:05:00Z","user_id":"u1","action":"teleport"}
            {"timestamp":"2026-03-02T09:06:00Z","user_id":"u1","action":"export","record_count":"many"}

            {"timestamp":"2026-03-02T09:07:00Z","user_id":"u1","action":"export","record_count":"250"}
            """, "day1.jsonl");

        Assert.Equal(2, events.Count);
        Assert.Equal(250, events[1].RecordCount);
        Assert.Equal(9, report.LinesRead);
        Assert.Equal(6, report.RejectedTotal);
        Assert.Equal(
            [
                (2L, RejectReason.BrokenJson), (3L, RejectReason.MissingField), (4L, RejectReason.BadTimestamp),
                (5L, RejectReason.BadTimestamp), (6L, RejectReason.UnknownAction), (7L, RejectReason.BadValue),
            ],
            report.Examples.Select(r => (r.Line, r.Reason)));
        Assert.All(report.Examples, r => Assert.Equal("day1.jsonl", r.File));
        Assert.Equal("day1.jsonl:3: missing_field: missing required field 'user_id'", report.Examples[1].ToString());
        Assert.Contains("'2026-03-02T09:04:00' is not ISO 8601 with a UTC offset", report.Examples[3].Message, StringComparison.Ordinal);
        Assert.Equal("record_count 'many' is not a non-negative number", report.Examples[5].Message);
        Assert.Equal(1, report.UnknownActions["teleport"]);
    }

    [Fact]
    public void Gzip_input_is_recognised_by_its_content_and_read_like_plain_text()
    {
        var (events, report) = Read("{\"timestamp\":\"2026-03-02T09:00:00Z\",\"user_id\":\"u1\",\"action\":\"read\"}\n", "events.log", gzip: true);

        Assert.Equal("u1", Assert.Single(events).UserId);
        Assert.Equal(1, report.LinesRead);
    }

    [Fact]
    public void A_csv_file_names_a_records_owner_and_unit_in_their_own_columns()
    {
        var (events, _) = Read("""
            timestamp,user_id,action,entity,record_id,record_business_unit,record_owner
            2026-03-02T09:00:00Z,u1,read,contact,c-17,Japan,u9
            2026-03-02T09:01:00Z,u1,read,contact,c-18,,
            """, "events.csv");

        Assert.Equal([("c-17", "u9", "Japan"), ("c-18", null, null)], events.Select(e => (e.RecordId, e.RecordOwner, e.RecordBusinessUnit)));
    }

    [Fact]
    public void A_csv_file_with_the_schema_header_in_any_order_and_quoted_cells_is_read()
    {
        var (events, report) = Read("""
            action,user_id,timestamp,entity,record_count,fields,details
            export,u1,2026-03-02T09:00:00+00:00,contact,300,"email;phone","said ""urgent"", twice"
            read,u2,2026-03-02T09:01:00-05:00,account,,,
            read,"u3,2026-03-02T09:02:00Z,account
            """, "events.csv");

        Assert.Equal(2, events.Count);
        Assert.Equal((AccessAction.Export, "contact", 300L, 2), (events[0].Action, events[0].Entity, events[0].RecordCount, events[0].FieldCount));
        Assert.Equal("said \"urgent\", twice", events[0].Details);
        Assert.Equal(1, events[1].RecordCount);
        Assert.Equal("events.csv:4: broken_csv: unbalanced quotes", Assert.Single(report.Examples).ToString());
    }

    [Fact]
    public void A_quoted_csv_cell_may_hold_line_breaks_and_later_errors_keep_their_own_line_numbers()
    {
        // RFC 4180 §2 rule 6: the record of line 2 spans lines 2-4; the bad record after it is still line 5.
        var (events, report) = Read(
            "timestamp,user_id,action,details\r\n" +
            "2026-03-02T09:00:00Z,u1,export,\"first line\r\nsecond, with comma\r\nthird \"\"quoted\"\"\"\r\n" +
            "2026-03-02T09:01:00Z,u2,teleport,\r\n" +
            "2026-03-02T09:02:00Z,u3,read,\"one\ntwo\"\n",
            "events.csv");

        Assert.Equal(["u1", "u3"], events.Select(e => e.UserId));
        Assert.Equal("first line\nsecond, with comma\nthird \"quoted\"", events[0].Details);
        Assert.Equal("one\ntwo", events[1].Details);
        Assert.Equal(4, report.LinesRead); // records (header and three events), not physical lines
        Assert.Equal((5L, RejectReason.UnknownAction), (Assert.Single(report.Examples).Line, report.Examples[0].Reason));
    }

    [Fact]
    public void A_quote_never_closed_is_reported_at_its_line_and_the_lines_after_it_are_still_read()
    {
        var (events, report) = Read(
            "timestamp,user_id,action,details\n" +
            "2026-03-02T09:00:00Z,u1,read,\"never closed\n" +
            "2026-03-02T09:01:00Z,u2,read,fine\n" +
            "2026-03-02T09:02:00Z,u3,read,\"also fine\"\n",
            "events.csv");

        Assert.Equal(["u2", "u3"], events.Select(e => e.UserId));
        Assert.Equal("events.csv:2: broken_csv: unbalanced quotes", Assert.Single(report.Examples).ToString());
    }

    [Theory]
    [InlineData("a,b,c", false, "Complete")]
    [InlineData("a,\"b", false, "InsideQuotes")]
    [InlineData("a,\"b\",\"c", false, "InsideQuotes")]
    [InlineData("a,b\"c", false, "Complete")] // a quote inside an unquoted cell is data, as CsvRow reads it
    [InlineData("a,\"say \"\"hi\"\"\"", false, "Complete")]
    [InlineData("still inside", true, "InsideQuotes")]
    [InlineData("closes\",next", true, "Complete")]
    [InlineData("closes\"\" not yet", true, "InsideQuotes")]
    [InlineData("x,\"also fine\"", true, "Broken")] // the first quote closes the open cell, then 'a' cannot follow
    public void A_line_continues_its_record_only_while_a_quoted_cell_is_open(string line, bool insideAtStart, string expected)
    {
        Assert.Equal(expected, CsvRecordReader.Scan(Encoding.UTF8.GetBytes(line), insideAtStart).ToString());
    }

    [Fact]
    public void Salesforce_event_log_files_map_login_report_export_api_and_uri_events()
    {
        var (events, report) = Read("""
            "EVENT_TYPE","TIMESTAMP","REQUEST_ID","ORGANIZATION_ID","USER_ID","USER_ID_DERIVED","TIMESTAMP_DERIVED","CLIENT_IP","SESSION_KEY","USER_NAME","LOGIN_STATUS","SOURCE_IP","REPORT_ID","ENTITY_NAME","ROW_COUNT","METHOD_NAME","ROWS_PROCESSED","URI"
            "Login","20260302090000.000","R1","00D000000000123","005000000000001","005000000000001AAA","2026-03-02T09:00:00.000Z","1.2.3.4","K1","ann@acme.test","LOGIN_NO_ERROR","1.2.3.4","","","","","",""
            "Login","20260302090500.000","R2","00D000000000123","005000000000002","","","","","bob@acme.test","LOGIN_ERROR_INVALID_PASSWORD","5.6.7.8","","","","","",""
            "Report","20260302091000.000","R3","00D000000000123","005000000000001","","2026-03-02T09:10:00.000Z","1.2.3.4","K1","","","","00O000000000001","Contact","1500","","",""
            "ReportExport","20260302091100.000","R4","00D000000000123","005000000000001","","2026-03-02T09:11:00.000Z","1.2.3.4","K1","","","","00O000000000001","","","","",""
            "API","20260302091200.000","R5","00D000000000123","005000000000001","","2026-03-02T09:12:00.000Z","1.2.3.4","K1","","","","","Lead","","query","2500",""
            "URI","20260302091300.000","R6","00D000000000123","005000000000001","","2026-03-02T09:13:00.000Z","1.2.3.4","K1","","","","","","","","","/lightning/r/Opportunity/006000000000001AAA/view"
            "URI","20260302091400.000","R7","00D000000000123","005000000000001","","2026-03-02T09:14:00.000Z","1.2.3.4","K1","","","","","","","","","/003000000000001"
            "LightningPageView","20260302091500.000","R8","00D000000000123","005000000000001","","2026-03-02T09:15:00.000Z","","","","","","","","","","",""
            """, "2026-03-02_Login.csv");

        Assert.Equal(
            [
                (AccessAction.Login, (string?)null, 1L), (AccessAction.LoginFailed, null, 1L), (AccessAction.ReportRun, "contact", 1500L),
                (AccessAction.Export, "report", 1L), (AccessAction.ApiQuery, "lead", 2500L), (AccessAction.Read, "opportunity", 1L), (AccessAction.Read, "contact", 1L),
            ],
            events.Select(e => (e.Action, e.Entity, e.RecordCount)));
        Assert.Equal("005000000000001", events[0].UserId);
        Assert.Equal(new DateTimeOffset(2026, 3, 2, 9, 5, 0, TimeSpan.Zero), events[1].Timestamp);
        Assert.Equal(("sf:Login:R1", "00D000000000123", "ann@acme.test"), (events[0].EventId, events[0].Tenant, events[0].UserName));
        Assert.Equal(1, report.UnknownActions["salesforce:LightningPageView"]);
    }

    [Fact]
    public void A_folder_of_files_is_merged_into_one_stream_in_timestamp_order()
    {
        var folder = Directory.CreateTempSubdirectory("crm-analyzer-input-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "a.jsonl"), """
                {"timestamp":"2026-03-02T09:00:00Z","user_id":"u1","action":"login"}
                {"timestamp":"2026-03-02T11:00:00Z","user_id":"u1","action":"read"}
                """);
            File.WriteAllText(Path.Combine(folder, "b.csv"), "timestamp,user_id,action\n2026-03-02T10:00:00Z,u2,login\n2026-03-02T12:00:00Z,u2,logout\n");
            File.WriteAllText(Path.Combine(folder, "notes.txt"), "not events");
            var report = new IngestionReport();
            var files = EventInput.FindFiles(folder);
            using var input = new EventInput(files, report, new StringPool(), folder);

            var hours = new List<int>();
            while (input.TryRead(out var e))
            {
                hours.Add(e.Timestamp.Hour);
            }

            Assert.Equal(2, files.Count);
            Assert.Equal([9, 10, 11, 12], hours);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
