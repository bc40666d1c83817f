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
/// <para>
/// Salesforce event log files are the exception: nothing documents their rows as being in time order, and a file
/// holds a whole day (or hour) of one event type, so a row out of order could be hours older than the rows before
/// it and would be rejected as late. Each such file is therefore read once before any event is handed on (on the
/// first read, by the reading thread; lines, rejections and unknown actions are counted then, once), which gives
/// its earliest timestamp and whether its rows are in order; it takes its place in the merge at that earliest
/// timestamp, is opened again only when the merge gets there, and is then streamed if its rows are in order, or
/// read whole and sorted by timestamp (stable) if they are not. Memory for that is the events of the unordered files whose time has come (a day's worth of one
/// event type), never the whole input, and files not yet reached hold no buffer.
/// </para>
/// </summary>
internal sealed class EventInput : IDisposable
{
    private static readonly string[] Extensions = [".jsonl", ".ndjson", ".json", ".csv"];
    private readonly List<Source> _sources = [];
    private readonly PriorityQueue<Source, (long Ticks, int Order)> _queue = new();
    private bool _started;

    public EventInput(IReadOnlyList<string> files, IngestionReport report, StringPool pool, string? root = null)
    {
        TotalBytes = files.Sum(f => new FileInfo(f).Length);
        ReportJoin = new SalesforceReportJoin(report);
        for (var i = 0; i < files.Count; i++)
        {
            var display = root is null ? files[i] : Path.GetRelativePath(root, files[i]);
            _sources.Add(new Source(files[i], display, pool, new EventFileReader(files[i], display, report, pool)));
            report.FilesRead++;
        }
    }

    public long TotalBytes { get; }

    public long BytesRead => _sources.Sum(r => r.BytesRead);

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
        if (!_started)
        {
            // On the first read, not when opened: the reading thread does it, and parse-only timing and progress include it.
            _started = true;
            for (var i = 0; i < _sources.Count; i++)
            {
                if (_sources[i].First() is { } ticks)
                {
                    _queue.Enqueue(_sources[i], (ticks, i));
                }
            }
        }

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

            reader.Open();
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
        foreach (var source in _sources)
        {
            source.Dispose();
        }
    }

    /// <summary>One file of the input: streamed as it is read, or (Salesforce) scanned first and read in order when its time comes.</summary>
    private sealed class Source(string path, string display, StringPool pool, EventFileReader reader) : IDisposable
    {
        private EventFileReader? _reader = reader;
        private List<(AccessEvent Event, SalesforceReportRow? Report)>? _rows;
        private int _at;
        private bool _deferred;
        private bool _inOrder = true;
        private long _bytes;

        public AccessEvent? Current { get; private set; }

        public SalesforceReportRow? CurrentReport { get; private set; }

        public long BytesRead => _reader?.BytesRead ?? _bytes;

        /// <summary>Reads up to the first event; for a Salesforce file the whole file. The time at which the file joins the merge, or null when it has no event.</summary>
        public long? First()
        {
            var first = _reader!;
            if (!first.MoveNext())
            {
                return null;
            }

            if (first.Format != "salesforce-csv")
            {
                Current = first.Current;
                CurrentReport = first.CurrentReport;
                return Current!.UtcTicks;
            }

            // The one pass that counts: lines, rejections and unknown actions are reported here, not when read again.
            var earliest = first.Current!.UtcTicks;
            var previous = earliest;
            while (first.MoveNext())
            {
                var ticks = first.Current!.UtcTicks;
                _inOrder &= ticks >= previous;
                earliest = Math.Min(earliest, ticks);
                previous = ticks;
            }

            _bytes = first.BytesRead;
            first.Dispose();
            _reader = null;
            _deferred = true;
            return earliest;
        }

        public bool MoveNext()
        {
            if (_rows is not null)
            {
                return Next();
            }

            if (_reader!.MoveNext())
            {
                Current = _reader.Current;
                CurrentReport = _reader.CurrentReport;
                return true;
            }

            Current = null;
            CurrentReport = null;
            return false;
        }

        /// <summary>A deferred file is opened when the merge reaches its earliest timestamp: streamed again, or read whole and sorted.</summary>
        public void Open()
        {
            if (!_deferred)
            {
                return;
            }

            _deferred = false;
            var again = new EventFileReader(path, display, new IngestionReport(), pool);
            if (_inOrder)
            {
                _reader = again;
                MoveNext();
                return;
            }

            using (again)
            {
                _rows = [];
                while (again.MoveNext())
                {
                    _rows.Add((again.Current!, again.CurrentReport));
                }
            }

            // Array.Sort is not stable: the row number in the key keeps rows of equal timestamps in file order.
            var order = new (long Ticks, int Row)[_rows.Count];
            for (var i = 0; i < order.Length; i++)
            {
                order[i] = (_rows[i].Event.UtcTicks, i);
            }

            Array.Sort(order);
            var sorted = new List<(AccessEvent, SalesforceReportRow?)>(_rows.Count);
            foreach (var (_, row) in order)
            {
                sorted.Add(_rows[row]);
            }

            _rows = sorted;
            Next();
        }

        public void Dispose()
        {
            _reader?.Dispose();
            _rows = null;
        }

        private bool Next()
        {
            if (_at < _rows!.Count)
            {
                (Current, CurrentReport) = _rows[_at];
                _rows[_at++] = default;
                return true;
            }

            Current = null;
            CurrentReport = null;
            return false;
        }
    }
}
