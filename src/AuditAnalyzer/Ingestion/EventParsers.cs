using System.Buffers.Text;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Events;

namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>Turns one line of a file into an event, or reports why it cannot.</summary>
internal interface IEventLineParser
{
    /// <summary>Parses a line. Returns null for a line that is not an event (header, blank) or was rejected (then reported).</summary>
    AccessEvent? Parse(ReadOnlySpan<byte> line, long lineNumber);
}

/// <summary>
/// The fields of one event as they are read, before validation. Shared by the JSON and CSV parsers so
/// both apply exactly the same rules (required fields, timestamp with offset, known action).
/// </summary>
internal sealed class EventFields(string file, IngestionReport report, StringPool pool)
{
    public string File { get; } = file;

    public IngestionReport Report { get; } = report;

    public StringPool Pool { get; } = pool;

    public DateTimeOffset? Timestamp;
    public string? TimestampText;
    public string? UserId;
    public AccessAction Action;
    public string? ActionText;
    public string? EventId;
    public string? Tenant;
    public string? UserName;
    public string? SessionId;
    public string? SourceIp;
    public string? Country;
    public string? ClientId;
    public string? Entity;
    public string? RecordId;
    public string? RecordOwner;
    public string? RecordBusinessUnit;
    public long RecordCount = 1;
    public long Bytes;
    public int FieldCount;
    public EventOutcome Outcome;
    public string? TargetUser;
    public string? Privilege;
    public string? Details;
    public string? BadValue;

    /// <summary>A Salesforce Report or ReportExport row's join key, for <see cref="SalesforceReportJoin"/>; null for every other event.</summary>
    public SalesforceReportRow? SalesforceReport;

    public void Clear()
    {
        Timestamp = null;
        TimestampText = null;
        UserId = null;
        Action = AccessAction.Unknown;
        ActionText = null;
        EventId = null;
        Tenant = UserName = SessionId = SourceIp = Country = ClientId = Entity = RecordId = RecordOwner = RecordBusinessUnit = null;
        RecordCount = 1;
        Bytes = 0;
        FieldCount = 0;
        Outcome = EventOutcome.Success;
        TargetUser = Privilege = Details = BadValue = null;
        SalesforceReport = null;
    }

    public void SetTimestamp(ReadOnlySpan<byte> value)
    {
        if (Timestamps.TryParseIso(value, out var parsed))
        {
            Timestamp = parsed;
        }
        else
        {
            TimestampText = Encoding.UTF8.GetString(value);
        }
    }

    public void SetAction(ReadOnlySpan<byte> value)
    {
        Span<char> chars = stackalloc char[Math.Min(value.Length, 64)];
        var length = Encoding.UTF8.GetChars(value[..chars.Length], chars);
        var name = chars[..length].Trim();
        if (name.Length > 0 && AccessActions.TryParse(name, out var action))
        {
            Action = action;
        }
        else
        {
            ActionText = name.Length == 0 ? null : Pool.Get(name);
        }
    }

    public void SetOutcome(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty || value.SequenceEqual("success"u8))
        {
            Outcome = EventOutcome.Success;
        }
        else if (value.SequenceEqual("denied"u8))
        {
            Outcome = EventOutcome.Denied;
        }
        else if (value.SequenceEqual("error"u8))
        {
            Outcome = EventOutcome.Error;
        }
        else
        {
            BadValue ??= $"outcome '{Encoding.UTF8.GetString(value)}' is not one of success, denied, error";
        }
    }

    public void SetCount(string field, ReadOnlySpan<byte> value, ref long target)
    {
        if (value.IsEmpty)
        {
            return;
        }

        if (Utf8Parser.TryParse(value, out long parsed, out var consumed) && consumed == value.Length && parsed >= 0)
        {
            target = parsed;
        }
        else if (Utf8Parser.TryParse(value, out double real, out consumed) && consumed == value.Length && real >= 0 && real < long.MaxValue)
        {
            target = (long)real;
        }
        else
        {
            BadValue ??= $"{field} '{Encoding.UTF8.GetString(value)}' is not a non-negative number";
        }
    }

    /// <summary>Validates and builds the event, or reports the line with the first problem found.</summary>
    public AccessEvent? Build(long line)
    {
        if (UserId is null || UserId.Length == 0)
        {
            return Reject(line, RejectReason.MissingField, "missing required field 'user_id'");
        }

        if (Timestamp is null)
        {
            return TimestampText is null
                ? Reject(line, RejectReason.MissingField, "missing required field 'timestamp'")
                : Reject(line, RejectReason.BadTimestamp, $"timestamp '{Shorten(TimestampText)}' is not ISO 8601 with a UTC offset (e.g. 2026-03-01T09:30:00+01:00)");
        }

        if (Action == AccessAction.Unknown)
        {
            return ActionText is null
                ? Reject(line, RejectReason.MissingField, "missing required field 'action'")
                : Reject(line, RejectReason.UnknownAction, $"unknown action '{Shorten(ActionText)}' (kept in the rejects file, counted per action, not scored)", ActionText);
        }

        if (BadValue is not null)
        {
            return Reject(line, RejectReason.BadValue, BadValue);
        }

        return new AccessEvent
        {
            Timestamp = Timestamp.Value,
            UserId = UserId,
            Action = Action,
            EventId = EventId ?? string.Create(CultureInfo.InvariantCulture, $"{File}:{line}"),
            HasSourceId = EventId is not null,
            SourceFile = File,
            SourceLine = line,
            Tenant = Tenant,
            UserName = UserName,
            SessionId = SessionId,
            SourceIp = SourceIp,
            Country = Country,
            ClientId = ClientId,
            Entity = Entity,
            RecordId = RecordId,
            RecordOwner = RecordOwner,
            RecordBusinessUnit = RecordBusinessUnit,
            RecordCount = RecordCount,
            Bytes = Bytes,
            FieldCount = FieldCount,
            Outcome = Outcome,
            TargetUser = TargetUser,
            Privilege = Privilege,
            Details = Details,
        };
    }

    public AccessEvent? Reject(long line, RejectReason reason, string message, string? unknownAction = null)
    {
        Report.Reject(File, line, reason, message, unknownAction);
        return null;
    }

    private static string Shorten(string value) => value.Length <= 60 ? value : string.Concat(value.AsSpan(0, 57), "...");
}

/// <summary>JSON Lines of the access-event schema, read with <see cref="Utf8JsonReader"/> straight from the line's bytes.</summary>
internal sealed class JsonLinesEventParser(EventFields fields) : IEventLineParser
{
    private static readonly JsonReaderOptions Options = new() { MaxDepth = 16 };

    public AccessEvent? Parse(ReadOnlySpan<byte> line, long lineNumber)
    {
        if (line.Trim(" \t"u8).IsEmpty)
        {
            return null;
        }

        fields.Clear();
        try
        {
            var reader = new Utf8JsonReader(line, Options);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return fields.Reject(lineNumber, RejectReason.BrokenJson, "the line is not a JSON object");
            }

            Span<char> name = stackalloc char[32];
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var nameLength = reader.HasValueSequence || reader.ValueSpan.Length > name.Length ? 0 : reader.CopyString(name);
                reader.Read();
                ReadValue(ref reader, name[..nameLength]);
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                return fields.Reject(lineNumber, RejectReason.BrokenJson, "the line holds more than one JSON object");
            }
        }
        catch (JsonException e)
        {
            return fields.Reject(lineNumber, RejectReason.BrokenJson, $"broken JSON at byte {e.BytePositionInLine}");
        }

        return fields.Build(lineNumber);
    }

    private void ReadValue(ref Utf8JsonReader reader, scoped ReadOnlySpan<char> name)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return;
        }

        switch (name)
        {
            case "timestamp":
                if (reader.TokenType == JsonTokenType.String)
                {
                    fields.SetTimestamp(Value(ref reader));
                }
                else
                {
                    fields.TimestampText = "(not a string)";
                }

                return;
            case "user_id":
                fields.UserId = PooledString(ref reader, "user_id");
                return;
            case "action":
                if (reader.TokenType == JsonTokenType.String)
                {
                    fields.SetAction(Value(ref reader));
                }
                else
                {
                    fields.ActionText = "(not a string)";
                }

                return;
            case "event_id":
                fields.EventId = reader.TokenType == JsonTokenType.String ? reader.GetString() : Raw(ref reader);
                return;
            case "tenant":
                fields.Tenant = PooledString(ref reader, "tenant");
                return;
            case "user_name":
                fields.UserName = PooledString(ref reader, "user_name");
                return;
            case "session_id":
                fields.SessionId = PooledString(ref reader, "session_id");
                return;
            case "source_ip":
                fields.SourceIp = PooledString(ref reader, "source_ip");
                return;
            case "country":
                fields.Country = PooledString(ref reader, "country");
                return;
            case "client_id":
                fields.ClientId = PooledString(ref reader, "client_id");
                return;
            case "entity":
                fields.Entity = PooledString(ref reader, "entity");
                return;
            case "record_id":
                fields.RecordId = reader.TokenType == JsonTokenType.String ? reader.GetString() : Raw(ref reader);
                return;
            case "record_owner":
                fields.RecordOwner = PooledString(ref reader, "record_owner");
                return;
            case "record_business_unit":
                fields.RecordBusinessUnit = PooledString(ref reader, "record_business_unit");
                return;
            case "record_count":
                fields.SetCount("record_count", Value(ref reader), ref fields.RecordCount);
                return;
            case "bytes":
                fields.SetCount("bytes", Value(ref reader), ref fields.Bytes);
                return;
            case "fields":
                if (reader.TokenType == JsonTokenType.StartArray)
                {
                    var count = 0;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        count++;
                        reader.Skip();
                    }

                    fields.FieldCount = count;
                }
                else if (reader.TokenType == JsonTokenType.String)
                {
                    fields.FieldCount = CountList(Value(ref reader));
                }
                else
                {
                    fields.BadValue ??= "fields must be a list of field names";
                }

                return;
            case "outcome":
                fields.SetOutcome(Value(ref reader));
                return;
            case "target_user":
                fields.TargetUser = PooledString(ref reader, "target_user");
                return;
            case "privilege":
                fields.Privilege = PooledString(ref reader, "privilege");
                return;
            case "details":
                fields.Details = reader.TokenType == JsonTokenType.String ? reader.GetString() : Raw(ref reader);
                return;
            default:
                reader.Skip();
                return;
        }
    }

    internal static int CountList(ReadOnlySpan<byte> list)
    {
        if (list.Trim(" "u8).IsEmpty)
        {
            return 0;
        }

        return list.Count((byte)';') + list.Count((byte)'|') + list.Count((byte)',') + 1;
    }

    private static ReadOnlySpan<byte> Value(ref Utf8JsonReader reader) =>
        reader.HasValueSequence || reader.ValueIsEscaped ? Encoding.UTF8.GetBytes(reader.GetString() ?? string.Empty) : reader.ValueSpan;

    private string? PooledString(ref Utf8JsonReader reader, string field)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return reader.ValueIsEscaped || reader.HasValueSequence ? fields.Pool.Get(reader.GetString().AsSpan()) : fields.Pool.Get(reader.ValueSpan);
        }

        if (reader.TokenType == JsonTokenType.Number)
        {
            return fields.Pool.Get(reader.ValueSpan);
        }

        reader.Skip();
        fields.BadValue ??= $"{field} must be a string";
        return null;
    }

    private static string Raw(ref Utf8JsonReader reader)
    {
        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
        {
            var start = (int)reader.TokenStartIndex;
            reader.Skip();
            return "(structured)";
        }

        return Encoding.UTF8.GetString(reader.ValueSpan);
    }
}

/// <summary>CSV with a header naming the access-event schema's columns (any order; unknown columns ignored).</summary>
internal sealed class CsvEventParser : IEventLineParser
{
    private static readonly string[] Columns =
    [
        "timestamp", "user_id", "action", "event_id", "tenant", "user_name", "session_id", "source_ip", "user_agent", "country",
        "client_id", "entity", "record_id", "record_count", "bytes", "fields", "outcome", "target_user", "privilege", "details",
        "record_owner", "record_business_unit",
    ];

    private readonly EventFields _fields;
    private readonly CsvRow _row = new();
    private readonly int[] _index = new int[Columns.Length];
    private bool _haveHeader;

    public CsvEventParser(EventFields fields)
    {
        _fields = fields;
        Array.Fill(_index, -1);
    }

    public AccessEvent? Parse(ReadOnlySpan<byte> line, long lineNumber)
    {
        if (line.Trim(" \t"u8).IsEmpty)
        {
            return null;
        }

        if (!_row.Split(line))
        {
            _fields.Clear();
            return _fields.Reject(lineNumber, RejectReason.BrokenCsv, "unbalanced quotes");
        }

        if (!_haveHeader)
        {
            ReadHeader();
            return null;
        }

        _fields.Clear();
        var pool = _fields.Pool;
        for (var column = 0; column < Columns.Length; column++)
        {
            var at = _index[column];
            if (at < 0 || at >= _row.Count)
            {
                continue;
            }

            var value = _row[at];
            if (value.IsEmpty)
            {
                continue;
            }

            switch (column)
            {
                case 0: _fields.SetTimestamp(value); break;
                case 1: _fields.UserId = pool.Get(value); break;
                case 2: _fields.SetAction(value); break;
                case 3: _fields.EventId = Encoding.UTF8.GetString(value); break;
                case 4: _fields.Tenant = pool.Get(value); break;
                case 5: _fields.UserName = pool.Get(value); break;
                case 6: _fields.SessionId = pool.Get(value); break;
                case 7: _fields.SourceIp = pool.Get(value); break;
                case 9: _fields.Country = pool.Get(value); break;
                case 10: _fields.ClientId = pool.Get(value); break;
                case 11: _fields.Entity = pool.Get(value); break;
                case 12: _fields.RecordId = Encoding.UTF8.GetString(value); break;
                case 13: _fields.SetCount("record_count", value, ref _fields.RecordCount); break;
                case 14: _fields.SetCount("bytes", value, ref _fields.Bytes); break;
                case 15: _fields.FieldCount = JsonLinesEventParser.CountList(value); break;
                case 16: _fields.SetOutcome(value); break;
                case 17: _fields.TargetUser = pool.Get(value); break;
                case 18: _fields.Privilege = pool.Get(value); break;
                case 19: _fields.Details = Encoding.UTF8.GetString(value); break;
                case 20: _fields.RecordOwner = pool.Get(value); break;
                case 21: _fields.RecordBusinessUnit = pool.Get(value); break;
                default: break;
            }
        }

        return _fields.Build(lineNumber);
    }

    private void ReadHeader()
    {
        _haveHeader = true;
        for (var i = 0; i < _row.Count; i++)
        {
            var name = Encoding.UTF8.GetString(_row[i]).Trim().ToLowerInvariant();
            var column = Array.IndexOf(Columns, name);
            if (column >= 0)
            {
                _index[column] = i;
            }
        }
    }
}
