using CrmSecurity.AuditAnalyzer.Events;

namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>
/// Reads one events file (JSON Lines, schema CSV or a Salesforce EventLogFile CSV, gzip or not), one
/// event at a time. The format is recognised from the first line, not the file name.
/// </summary>
internal sealed class EventFileReader : IDisposable
{
    private readonly LineReader _lines;
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
        DisplayName = displayName;
        _report = report;
        _fields = new EventFields(displayName, report, pool);
    }

    public string DisplayName { get; }

    public string Format { get; private set; } = "unknown";

    public AccessEvent? Current { get; private set; }

    public long BytesRead => _lines.BytesRead;

    public bool MoveNext()
    {
        while (_lines.TryReadLine(out var line))
        {
            _report.LinesRead++;
            if (_lines.LastLineTooLong)
            {
                _report.Reject(DisplayName, _lines.LineNumber, RejectReason.LineTooLong, $"line longer than {LineReader.MaxLineBytes} bytes");
                continue;
            }

            _parser ??= Choose(line);
            var parsed = _parser.Parse(line, _lines.LineNumber);
            if (parsed is not null)
            {
                _report.EventsParsed++;
                Current = parsed;
                return true;
            }
        }

        Current = null;
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
            return new SalesforceEventParser(_fields);
        }

        Format = "csv";
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

    public bool TryRead(out AccessEvent next)
    {
        if (!_queue.TryDequeue(out var reader, out var key))
        {
            next = null!;
            return false;
        }

        next = reader.Current!;
        if (reader.MoveNext())
        {
            _queue.Enqueue(reader, (reader.Current!.UtcTicks, key.Order));
        }

        return true;
    }

    public void Dispose()
    {
        foreach (var reader in _readers)
        {
            reader.Dispose();
        }
    }
}
