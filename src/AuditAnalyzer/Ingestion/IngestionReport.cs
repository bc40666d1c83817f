namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>Why a line or an event was not scored. Names are the ones the summary and the rejects file print.</summary>
internal enum RejectReason
{
    BrokenJson,
    BrokenCsv,
    MissingField,
    BadTimestamp,
    BadValue,
    UnknownAction,
    LineTooLong,
    Duplicate,
    Late,
    AlreadyAnalysed,

    /// <summary>Live ingestion: the line's tenant is not one the sending client's token is bound to.</summary>
    TenantNotAllowed,

    /// <summary>Live ingestion: the line's user is not one the sending client may report on.</summary>
    UserNotAllowed,

    /// <summary>Live ingestion: the line's event time is older than the stored events' retention (<c>AuditAnalyzer:Live:RetentionDays</c>).</summary>
    OlderThanRetention,
}

internal static class RejectReasons
{
    public static string Name(RejectReason reason) => reason switch
    {
        RejectReason.BrokenJson => "broken_json",
        RejectReason.BrokenCsv => "broken_csv",
        RejectReason.MissingField => "missing_field",
        RejectReason.BadTimestamp => "bad_timestamp",
        RejectReason.BadValue => "bad_value",
        RejectReason.UnknownAction => "unknown_action",
        RejectReason.LineTooLong => "line_too_long",
        RejectReason.Duplicate => "duplicate_event_id",
        RejectReason.Late => "later_than_lateness",
        RejectReason.AlreadyAnalysed => "already_analysed",
        RejectReason.TenantNotAllowed => "tenant_not_allowed",
        RejectReason.UserNotAllowed => "user_not_allowed",
        RejectReason.OlderThanRetention => "older_than_retention",
        _ => reason.ToString(),
    };
}

/// <summary>One line that was not scored, with where it was and why.</summary>
internal sealed record LineRejection(string File, long Line, RejectReason Reason, string Message)
{
    public override string ToString() => $"{File}:{Line}: {RejectReasons.Name(Reason)}: {Message}";
}

/// <summary>
/// Counts of an ingestion run: lines read, events scored, rejections by reason, unknown actions by name.
/// Every rejection is passed to <see cref="Rejected"/> (the CLI writes them to stderr and the rejects file);
/// the report itself keeps only counts and the first few examples, so memory does not grow with bad input.
/// </summary>
internal sealed class IngestionReport
{
    public const int KeptExamples = 20;

    private readonly long[] _byReason = new long[Enum.GetValues<RejectReason>().Length];
    private readonly List<LineRejection> _examples = [];

    public event Action<LineRejection>? Rejected;

    public long LinesRead { get; set; }

    public long EventsParsed { get; set; }

    public long EventsScored { get; set; }

    public long FilesRead { get; set; }

    public Dictionary<string, long> UnknownActions { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, string> Warnings { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<LineRejection> Examples => _examples;

    public long RejectedTotal => _byReason.Sum();

    public long Count(RejectReason reason) => _byReason[(int)reason];

    public IEnumerable<(RejectReason Reason, long Count)> ByReason() =>
        Enum.GetValues<RejectReason>().Where(r => _byReason[(int)r] > 0).Select(r => (r, _byReason[(int)r]));

    /// <summary>Thread-safe: the reading thread and the scoring thread both report.</summary>
    public void Reject(string file, long line, RejectReason reason, string message, string? unknownAction = null)
    {
        lock (_examples)
        {
            RejectLocked(file, line, reason, message, unknownAction);
        }
    }

    private void RejectLocked(string file, long line, RejectReason reason, string message, string? unknownAction)
    {
        _byReason[(int)reason]++;
        if (unknownAction is not null)
        {
            UnknownActions[unknownAction] = UnknownActions.GetValueOrDefault(unknownAction) + 1;
        }

        var rejection = new LineRejection(file, line, reason, message);
        if (_examples.Count < KeptExamples)
        {
            _examples.Add(rejection);
        }

        Rejected?.Invoke(rejection);
    }

    /// <summary>A warning reported once per key (e.g. an unknown time zone), however often it recurs.</summary>
    public bool Warn(string key, string message)
    {
        lock (_examples)
        {
            return Warnings.TryAdd(key, message);
        }
    }
}
