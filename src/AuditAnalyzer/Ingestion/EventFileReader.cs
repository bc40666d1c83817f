using CrmSecurity.AuditAnalyzer.Events;

namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>
/// Reads one events file (JSON Lines, schema CSV or a Salesforce EventLogFile CSV, gzip or not), one
/// event at a time. The format is recognised from the first line, not the file name.
/// </summary>
internal sealed class EventFileReader : IDisposable
{
    private readonly LineReader _lines;
    private readonly CsvRecordReader _records;
    private readonly EventFields _fields;
    private readonly IngestionReport _report;
    private IEventLineParser? _parser;

    public EventFileReader(string path, string displayName, IngestionReport report, StringPool pool)
        : this(LineReader.Open(path), displayName, report, pool)
    {
    }

    public EventFileReader(Stream stream, string displayName, IngestionReport report, StringPool pool)
    {
        _lines = new LineReader(stream);
        // The first line is read as a line: it decides the format, and only CSV joins quoted line breaks.
        _records = new CsvRecordReader(_lines) { JoinQuotedLineBreaks = false };
        DisplayName = displayName;
        _report = report;
        _fields = new EventFields(displayName, report, pool);
    }

    public string DisplayName { get; }

    public string Format { get; private set; } = "unknown";

    public AccessEvent? Current { get; private set; }

    /// <summary>When <see cref="Current"/> is a Salesforce Report or ReportExport row: its kind and REQUEST_ID.</summary>
    public SalesforceReportRow? CurrentReport { get; private set; }

    public long BytesRead => _lines.BytesRead;

    public bool MoveNext()
    {
        // A CSV record may span lines (a quoted line break); it is counted once and numbered by its first line.
        while (_records.TryReadRecord(out var line))
        {
            _report.LinesRead++;
            if (_records.LastLineTooLong)
            {
                _report.Reject(DisplayName, _records.LineNumber, RejectReason.LineTooLong, $"line longer than {LineReader.MaxLineBytes} bytes");
                continue;
            }

            _parser ??= Choose(line);
            var parsed = _parser.Parse(line, _records.LineNumber);
            if (parsed is not null)
            {
                _report.EventsParsed++;
                Current = parsed;
                CurrentReport = _fields.SalesforceReport;
                return true;
            }
        }

        Current = null;
        CurrentReport = null;
        return false;
    }

    public void Dispose() => _lines.Dispose();

    private IEventLineParser Choose(ReadOnlySpan<byte> first)
    {
        var trimmed = first.TrimStart(" \t"u8);
        if (trimmed.Length > 0 && trimmed[0] == '{')
        {
            Format = "jsonl";
            return new JsonLinesEventParser(_fields);
        }

        if (SalesforceEventParser.IsSalesforceHeader(first))
        {
            Format = "salesforce-csv";
            _records.JoinQuotedLineBreaks = true;
            return new SalesforceEventParser(_fields);
        }

        Format = "csv";
        _records.JoinQuotedLineBreaks = true;
        return new CsvEventParser(_fields);
    }
}

/// <summary>
/// All events of a file or a folder of files, merged by timestamp. Files are read side by side (a k-way
/// merge on each file's next event) because real exports split one day across files (Salesforce writes
/// one file per event type and day); each file only needs to be in order within the lateness window.
/// </summary>
internal sealed class EventInput : IDisposable
{
    private static readonly string[] Extensions = [".jsonl", ".ndjson", ".json", ".csv"];
    private readonly List<EventFileReader> _readers = [];
    private readonly PriorityQueue<EventFileReader, (long Ticks, int Order)> _queue = new();

    public EventInput(IReadOnlyList<string> files, IngestionReport report, StringPool pool, string? root = null)
    {
        TotalBytes = files.Sum(f => new FileInfo(f).Length);
        ReportJoin = new SalesforceReportJoin(report);
        for (var i = 0; i < files.Count; i++)
        {
            var display = root is null ? files[i] : Path.GetRelativePath(root, files[i]);
            var reader = new EventFileReader(files[i], display, report, pool);
            _readers.Add(reader);
            report.FilesRead++;
            if (reader.MoveNext())
            {
                _queue.Enqueue(reader, (reader.Current!.UtcTicks, i));
            }
        }
    }

    public long TotalBytes { get; }

    public long BytesRead => _readers.Sum(r => r.BytesRead);

    public IReadOnlyList<EventFileReader> Files => _readers;

    /// <summary>Files of <paramref name="path"/>: the file itself, or every events file under the folder in name order.</summary>
    public static IReadOnlyList<string> FindFiles(string path)
    {
        if (File.Exists(path))
        {
            return [Path.GetFullPath(path)];
        }

        if (!Directory.Exists(path))
        {
            throw new FileNotFoundException($"No events file or folder at '{path}'.", path);
        }

        return Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
            .Where(IsEventsFile)
            .Order(StringComparer.Ordinal)
            .Select(Path.GetFullPath)
            .ToList();
    }

    public static bool IsEventsFile(string path)
    {
        var name = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? path[..^3] : path;
        return Extensions.Any(e => name.EndsWith(e, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Salesforce ReportExport and Report rows joined by REQUEST_ID (see <see cref="SalesforceReportJoin"/>).</summary>
    public SalesforceReportJoin ReportJoin { get; }

    public bool TryRead(out AccessEvent next)
    {
        while (true)
        {
            if (ReportJoin.TryTake(out next))
            {
                return true;
            }

            if (!_queue.TryDequeue(out var reader, out var key))
            {
                ReportJoin.Complete();
                return ReportJoin.TryTake(out next);
            }

            var e = reader.Current!;
            var row = reader.CurrentReport;
            if (reader.MoveNext())
            {
                _queue.Enqueue(reader, (reader.Current!.UtcTicks, key.Order));
            }

            if (row is null && ReportJoin.IsEmpty)
            {
                // Everything but Salesforce report rows passes straight on while nothing waits for a partner.
                next = e;
                return true;
            }

            ReportJoin.Add(e, row);
        }
    }

    public void Dispose()
    {
        foreach (var reader in _readers)
        {
            reader.Dispose();
        }
    }
}
