using System.Text;
using CrmSecurity.AuditAnalyzer.Events;

namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>
/// Salesforce Event Monitoring log files (EventLogFile CSVs) mapped onto the access-event schema.
/// Columns are the documented EventLogFile field names (Salesforce Object Reference, "EventLogFile Supported
/// Event Types", API 262.0): the common EVENT_TYPE, TIMESTAMP / TIMESTAMP_DERIVED, REQUEST_ID, ORGANIZATION_ID,
/// USER_ID / USER_ID_DERIVED, SESSION_KEY, CLIENT_IP, URI, and per type:
/// <list type="bullet">
/// <item>Login: USER_NAME, LOGIN_STATUS (LOGIN_NO_ERROR is a success), SOURCE_IP -> login / login_failed</item>
/// <item>Report (sforce_api_objects_eventlogfile_report.htm): REPORT_ID / REPORT_ID_DERIVED, ENTITY_NAME,
/// ROW_COUNT, ORIGIN, RENDERING_TYPE, DISPLAY_TYPE, REQUEST_STATUS -> report_run, or export when ORIGIN or
/// RENDERING_TYPE says the run was an export (<see cref="IsExportOrigin"/>)</item>
/// <item>ReportExport (sforce_api_objects_eventlogfile_reportexport.htm): URI (the report's page, whose path
/// holds the report id), URI_ID_DERIVED, REPORT_DESCRIPTION, CLIENT_INFO -> export. The documented schema has no
/// REPORT_ID, ENTITY_NAME or ROW_COUNT: the exported object and the row count come from the Report row of the
/// same REQUEST_ID, joined by <see cref="SalesforceReportJoin"/> (both rows are read where a file has them).</item>
/// <item>API (and RestApi, BulkApi): METHOD_NAME, ENTITY_NAME, ROWS_PROCESSED / ROWS_RETURNED -> api_query or a write</item>
/// <item>URI: URI (record pages; the entity is taken from the Lightning path or the record id's key prefix) -> read</item>
/// </list>
/// Other event types are counted as unknown actions (<c>salesforce:TYPE</c>), reported and not scored.
/// </summary>
internal sealed class SalesforceEventParser : IEventLineParser
{
    private static readonly Dictionary<string, string> KeyPrefixes = new(StringComparer.Ordinal)
    {
        ["001"] = "account",
        ["003"] = "contact",
        ["005"] = "user",
        ["006"] = "opportunity",
        ["00Q"] = "lead",
        ["500"] = "case",
        ["00T"] = "task",
        ["00U"] = "event",
        ["0Q0"] = "quote",
        ["800"] = "contract",
        ["01t"] = "product",
        ["00O"] = "report",
    };

    private readonly EventFields _fields;
    private readonly CsvRow _row = new();
    private readonly Dictionary<string, int> _columns = new(StringComparer.Ordinal);
    private bool _haveHeader;
    private int _eventType = -1, _timestamp = -1, _timestampDerived = -1, _requestId = -1, _organization = -1, _userId = -1, _userIdDerived = -1;
    private int _session = -1, _clientIp = -1, _sourceIp = -1, _uri = -1, _userName = -1, _loginStatus = -1, _reportId = -1, _entity = -1;
    private int _rowCount = -1, _methodName = -1, _rowsProcessed = -1, _rowsReturned = -1;
    private int _reportIdDerived = -1, _uriIdDerived = -1, _origin = -1, _renderingType = -1, _displayType = -1, _requestStatus = -1;

    public SalesforceEventParser(EventFields fields) => _fields = fields;

    /// <summary>True when a CSV header looks like an EventLogFile (it names EVENT_TYPE and a Salesforce timestamp column).</summary>
    public static bool IsSalesforceHeader(ReadOnlySpan<byte> header) =>
        header.IndexOf("EVENT_TYPE"u8) >= 0 && (header.IndexOf("TIMESTAMP"u8) >= 0) && header.IndexOf("USER_ID"u8) >= 0;

    public AccessEvent? Parse(ReadOnlySpan<byte> line, long lineNumber)
    {
        if (line.Trim(" \t"u8).IsEmpty)
        {
            return null;
        }

        _fields.Clear();
        if (!_row.Split(line))
        {
            return _fields.Reject(lineNumber, RejectReason.BrokenCsv, "unbalanced quotes");
        }

        if (!_haveHeader)
        {
            ReadHeader();
            return null;
        }

        var type = Text(_eventType);
        if (type.Length == 0)
        {
            return _fields.Reject(lineNumber, RejectReason.MissingField, "missing required field 'EVENT_TYPE'");
        }

        var pool = _fields.Pool;
        var derived = Cell(_timestampDerived);
        if (!derived.IsEmpty)
        {
            _fields.SetTimestamp(derived);
        }
        else if (Cell(_timestamp) is { IsEmpty: false } raw)
        {
            var text = Encoding.UTF8.GetString(raw);
            if (Timestamps.TryParseSalesforce(text, out var parsed))
            {
                _fields.Timestamp = parsed;
            }
            else
            {
                _fields.TimestampText = text;
            }
        }

        var user = Cell(_userId);
        if (user.IsEmpty)
        {
            user = Cell(_userIdDerived);
        }

        if (!user.IsEmpty)
        {
            _fields.UserId = pool.Get(user);
        }

        if (Cell(_requestId) is { IsEmpty: false } request)
        {
            _fields.EventId = string.Concat("sf:", type, ":", Encoding.UTF8.GetString(request));
        }

        _fields.Tenant = PooledOrNull(_organization);
        _fields.SessionId = PooledOrNull(_session);
        _fields.SourceIp = PooledOrNull(_clientIp) ?? PooledOrNull(_sourceIp);

        switch (type)
        {
            case "Login":
                _fields.UserName = PooledOrNull(_userName);
                _fields.SourceIp = PooledOrNull(_sourceIp) ?? _fields.SourceIp;
                var status = Cell(_loginStatus);
                var ok = status.IsEmpty || status.SequenceEqual("LOGIN_NO_ERROR"u8);
                _fields.Action = ok ? AccessAction.Login : AccessAction.LoginFailed;
                if (!ok)
                {
                    _fields.Outcome = EventOutcome.Denied;
                    _fields.Details = Encoding.UTF8.GetString(status);
                }

                break;
            case "Report":
                // Report Event Type: "includes all activity that's in the Report Export event type, plus more", and
                // Formatted Report and XLSX exports appear only here, so ORIGIN / RENDERING_TYPE decide run or export.
                _fields.Action = IsExportOrigin(Cell(_origin)) || IsExportRendering(Cell(_renderingType)) ? AccessAction.Export : AccessAction.ReportRun;
                _fields.Entity = Entity(_entity) ?? "report";
                _fields.RecordId = StringOrNull(_reportId) ?? StringOrNull(_reportIdDerived) ?? ReportIdInUri(Cell(_uri));
                _fields.SetCount("ROW_COUNT", Cell(_rowCount), ref _fields.RecordCount);
                SetRequestStatus();
                _fields.Details = ReportDetails();
                _fields.SalesforceReport = ReportRow(export: false);
                break;
            case "ReportExport":
                // Report Export Event Type: Details Only exports. No object or row count of its own (unless a file adds
                // them): until the Report row of the same REQUEST_ID is joined, an export of one record of 'report'.
                _fields.Action = AccessAction.Export;
                _fields.Entity = Entity(_entity) ?? "report";
                _fields.RecordId = ReportIdInUri(Cell(_uri)) ?? StringOrNull(_reportId) ?? StringOrNull(_uriIdDerived);
                _fields.SetCount("ROW_COUNT", Cell(_rowCount), ref _fields.RecordCount);
                _fields.SalesforceReport = ReportRow(export: true);
                break;
            case "API" or "RestApi" or "BulkApi" or "BulkApi2":
                _fields.Action = ApiAction(Cell(_methodName));
                _fields.Entity = Entity(_entity);
                var rows = Cell(_rowsProcessed);
                _fields.SetCount("ROWS_PROCESSED", rows.IsEmpty ? Cell(_rowsReturned) : rows, ref _fields.RecordCount);
                break;
            case "URI":
                _fields.Action = AccessAction.Read;
                _fields.Entity = UriEntity(Text(_uri));
                break;
            default:
                _fields.ActionText = pool.Get("salesforce:" + type);
                break;
        }

        return _fields.Build(lineNumber);
    }

    private void ReadHeader()
    {
        _haveHeader = true;
        for (var i = 0; i < _row.Count; i++)
        {
            _columns[Encoding.UTF8.GetString(_row[i]).Trim()] = i;
        }

        int At(string name) => _columns.GetValueOrDefault(name, -1);
        _eventType = At("EVENT_TYPE");
        _timestamp = At("TIMESTAMP");
        _timestampDerived = At("TIMESTAMP_DERIVED");
        _requestId = At("REQUEST_ID");
        _organization = At("ORGANIZATION_ID");
        _userId = At("USER_ID");
        _userIdDerived = At("USER_ID_DERIVED");
        _session = At("SESSION_KEY");
        _clientIp = At("CLIENT_IP");
        _sourceIp = At("SOURCE_IP");
        _uri = At("URI");
        _userName = At("USER_NAME");
        _loginStatus = At("LOGIN_STATUS");
        _reportId = At("REPORT_ID");
        _entity = At("ENTITY_NAME");
        _rowCount = At("ROW_COUNT");
        _methodName = At("METHOD_NAME");
        _rowsProcessed = At("ROWS_PROCESSED");
        _rowsReturned = At("ROWS_RETURNED");
        _reportIdDerived = At("REPORT_ID_DERIVED");
        _uriIdDerived = At("URI_ID_DERIVED");
        _origin = At("ORIGIN");
        _renderingType = At("RENDERING_TYPE");
        _displayType = At("DISPLAY_TYPE");
        _requestStatus = At("REQUEST_STATUS");
    }

    /// <summary>
    /// ORIGIN values of the Report event type that are exports: <c>ReportExported</c> ("a printable view or report
    /// export that wasn't asynchronous nor an API export"), <c>ReportExportedAsynchronously</c> and
    /// <c>ReportExportedUsingExcelConnector</c>. Every other origin (runs from Classic, Lightning, mobile, APIs,
    /// dashboards, previews, schedules) is a run. DISPLAY_TYPE is the run mode (D dashboard, S show details, H hide
    /// details), not an export marker: it is kept in the event's details only.
    /// </summary>
    internal static bool IsExportOrigin(ReadOnlySpan<byte> origin) =>
        origin.SequenceEqual("ReportExported"u8) || origin.SequenceEqual("ReportExportedAsynchronously"u8) || origin.SequenceEqual("ReportExportedUsingExcelConnector"u8);

    /// <summary>
    /// RENDERING_TYPE (Salesforce Classic's output format; blank for Lightning exports): X Excel, C CSV and P printable
    /// are exports, as in the Object Reference's own "Identify Large Report Exports by User" query
    /// (<c>RENDERING_TYPE=C OR RENDERING_TYPE=X OR RENDERING_TYPE=P</c>); W web, E email, J JSON, D dummy are not.
    /// </summary>
    internal static bool IsExportRendering(ReadOnlySpan<byte> rendering) =>
        rendering.Length == 1 && rendering[0] is (byte)'X' or (byte)'C' or (byte)'P';

    /// <summary>REQUEST_STATUS: F failure and A authorization error mean no data left; S, R, U, N and blank are kept as successes.</summary>
    private void SetRequestStatus()
    {
        var status = Cell(_requestStatus);
        if (status.SequenceEqual("F"u8))
        {
            _fields.Outcome = EventOutcome.Error;
        }
        else if (status.SequenceEqual("A"u8))
        {
            _fields.Outcome = EventOutcome.Denied;
        }
    }

    private string? ReportDetails()
    {
        var origin = Cell(_origin);
        var display = Cell(_displayType);
        var rendering = Cell(_renderingType);
        if (origin.IsEmpty && display.IsEmpty && rendering.IsEmpty)
        {
            return null;
        }

        return string.Concat(
            "ORIGIN=", Encoding.UTF8.GetString(origin),
            " DISPLAY_TYPE=", Encoding.UTF8.GetString(display),
            " RENDERING_TYPE=", Encoding.UTF8.GetString(rendering));
    }

    private SalesforceReportRow? ReportRow(bool export)
    {
        var request = Cell(_requestId);
        return request.IsEmpty ? null : new SalesforceReportRow(export, _fields.Pool.Get(request), !Cell(_rowCount).IsEmpty);
    }

    /// <summary>
    /// The report id in a report page's URI: the first path segment (Classic <c>/00O5e000008abcd?export=1...</c>) or the
    /// segment after <c>/Report/</c> (Lightning <c>/lightning/r/Report/00O.../view</c>), when it is a 15- or
    /// 18-character id with the report key prefix <c>00O</c>.
    /// </summary>
    internal static string? ReportIdInUri(ReadOnlySpan<byte> uri)
    {
        var path = uri;
        var query = path.IndexOfAny("?#"u8);
        if (query >= 0)
        {
            path = path[..query];
        }

        foreach (var range in path.Split((byte)'/'))
        {
            var segment = path[range];
            if ((segment.Length == 15 || segment.Length == 18) && segment.StartsWith("00O"u8) && IsAlphanumeric(segment))
            {
                return Encoding.ASCII.GetString(segment);
            }
        }

        return null;
    }

    private static bool IsAlphanumeric(ReadOnlySpan<byte> value)
    {
        foreach (var b in value)
        {
            if (!char.IsAsciiLetterOrDigit((char)b))
            {
                return false;
            }
        }

        return true;
    }

    private static AccessAction ApiAction(ReadOnlySpan<byte> method)
    {
        var name = Encoding.UTF8.GetString(method).ToLowerInvariant();
        return name switch
        {
            "create" or "insert" or "post" => AccessAction.Create,
            "update" or "upsert" or "patch" or "put" => AccessAction.Update,
            "delete" or "harddelete" => AccessAction.Delete,
            _ => AccessAction.ApiQuery,
        };
    }

    private string? UriEntity(string uri)
    {
        if (uri.Length == 0)
        {
            return null;
        }

        // Lightning record pages: /lightning/r/Contact/003.../view
        const string lightning = "/lightning/r/";
        var at = uri.IndexOf(lightning, StringComparison.Ordinal);
        if (at >= 0)
        {
            var rest = uri.AsSpan(at + lightning.Length);
            var slash = rest.IndexOf('/');
            var name = slash < 0 ? rest : rest[..slash];
            return name.Length == 0 ? null : _fields.Pool.Get(name.ToString().ToLowerInvariant());
        }

        // Classic record pages: /003xxxxxxxxxxxx; the first three characters of a record id name its object.
        var path = uri.AsSpan().TrimStart('/');
        if (path.Length >= 15 && KeyPrefixes.TryGetValue(path[..3].ToString(), out var entity))
        {
            return entity;
        }

        return null;
    }

    private string? Entity(int column)
    {
        var value = Cell(column);
        return value.IsEmpty ? null : _fields.Pool.Get(Encoding.UTF8.GetString(value).ToLowerInvariant());
    }

    private ReadOnlySpan<byte> Cell(int column) => column < 0 ? default : _row[column];

    private string Text(int column) => column < 0 ? string.Empty : _fields.Pool.Get(_row[column]);

    private string? PooledOrNull(int column) => Cell(column) is { IsEmpty: false } value ? _fields.Pool.Get(value) : null;

    private string? StringOrNull(int column) => Cell(column) is { IsEmpty: false } value ? Encoding.UTF8.GetString(value) : null;
}
