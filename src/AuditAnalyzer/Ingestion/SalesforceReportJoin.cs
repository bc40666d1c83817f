using CrmSecurity.AuditAnalyzer.Events;

namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>A Salesforce Report or ReportExport row's part in the join: which of the two it is, its REQUEST_ID, and whether it gave a ROW_COUNT.</summary>
internal sealed record SalesforceReportRow(bool IsReportExport, string RequestId, bool HasRowCount);

/// <summary>
/// Joins each Salesforce <c>ReportExport</c> row with the <c>Report</c> row of the same <c>REQUEST_ID</c> into one
/// <c>export</c> event, in the merged stream of a folder, keeping the stream in timestamp order.
/// <para>
/// Why: the Object Reference says "exporting a report directly from the report result captures the event in both the
/// Report and Report Export logs", and documents the ReportExport row with URI but no object and no row count, the
/// Report row with ENTITY_NAME and ROW_COUNT; "each event in a given transaction has the same REQUEST_ID". Scored
/// apart, a 60,000-row Contact export was an export of one 'report' record plus a 60,000-row report run, and no
/// volume detector saw an export. Joined, it is one export of 60,000 contact rows at the ReportExport's time, and
/// the Report row is not scored again as a run.
/// </para>
/// <para>
/// How: a Report or ReportExport row waits up to <see cref="Window"/> of stream time (the newest timestamp read) for
/// its partner; rows behind a waiting one wait with it, so order is kept and nothing becomes late downstream, in
/// memory for the events of that window only (other inputs never wait). The joined event takes the ReportExport
/// row's place in the stream and the Report row's place is dropped, so both cases (either row first) stay in order.
/// A Report row that finds no partner is scored alone: a run, or an export when its ORIGIN / RENDERING_TYPE say so
/// (Formatted Report and XLSX exports are logged only as Report rows). A ReportExport row that finds none is scored
/// as an export of one record of 'report' (its row count is unknown; inventing one would invent volume alerts) with
/// a warning naming the row, so the operator can add the Report files of the same days.
/// A copy of either row of a pair already joined (an hourly and a daily file of the same day, a file read twice)
/// yields the joined event again under the same event id, which the dedupe of <see cref="EventOrdering"/> drops.
/// </para>
/// </summary>
internal sealed class SalesforceReportJoin(IngestionReport report)
{
    /// <summary>How far apart in time the two rows of one request may be. They are one transaction, logged together.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(10);

    internal const string UnjoinedWarning = "salesforce-reportexport-without-report";

    private static readonly long WindowTicks = Window.Ticks;
    private readonly Queue<Slot> _slots = new();
    private readonly Dictionary<string, Slot> _waitingReports = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Slot> _waitingExports = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AccessEvent> _joined = new(StringComparer.Ordinal);
    private readonly Queue<(string RequestId, long Until)> _joinedExpiry = new();
    private long _now = long.MinValue;
    private bool _complete;

    /// <summary>True when nothing is held: an event that is no report row can pass straight on.</summary>
    public bool IsEmpty => _slots.Count == 0;

    public void Add(AccessEvent e, SalesforceReportRow? row)
    {
        _now = Math.Max(_now, e.UtcTicks);
        ForgetJoined();
        if (row is null)
        {
            _slots.Enqueue(new Slot(e));
            return;
        }

        if (_joined.TryGetValue(row.RequestId, out var joined))
        {
            _slots.Enqueue(new Slot(joined));
            return;
        }

        var partners = row.IsReportExport ? _waitingReports : _waitingExports;
        // A partner whose wait is over is released alone: more than the window apart, they are not one transaction.
        if (partners.TryGetValue(row.RequestId, out var partner) && partner.Deadline >= _now)
        {
            partners.Remove(row.RequestId);
            var merged = row.IsReportExport ? Merge(e, partner.Event!, partner.Row!.HasRowCount) : Merge(partner.Event!, e, row.HasRowCount);
            Remember(row.RequestId, merged);
            partner.Waiting = false;
            if (row.IsReportExport)
            {
                // The Report row's place is dropped (its copies too); the export is scored at its own time.
                partner.Event = null;
                partner.ForCopies(merged);
                _slots.Enqueue(new Slot(merged));
            }
            else
            {
                partner.Event = merged;
                partner.ForCopies(merged);
            }

            return;
        }

        var own = row.IsReportExport ? _waitingExports : _waitingReports;
        var slot = new Slot(e) { Row = row };
        if (own.TryGetValue(row.RequestId, out var original))
        {
            // A copy of a row still waiting (the same file twice, overlapping hourly and daily files): it follows
            // the original, so the dedupe sees the same event twice, whichever way the original ends.
            (original.Copies ??= []).Add(slot);
        }
        else
        {
            own.Add(row.RequestId, slot);
            slot.Waiting = true;
            slot.Deadline = e.UtcTicks + WindowTicks;
        }

        _slots.Enqueue(slot);
    }

    /// <summary>No more input: everything held is released.</summary>
    public void Complete() => _complete = true;

    /// <summary>The next event in order whose wait is over, if any.</summary>
    public bool TryTake(out AccessEvent next)
    {
        while (_slots.TryPeek(out var head))
        {
            if (head.Event is null)
            {
                _slots.Dequeue();
                continue;
            }

            if (head.Waiting && head.Deadline >= _now && !_complete)
            {
                break;
            }

            _slots.Dequeue();
            next = head.Waiting ? Alone(head) : head.Event;
            return true;
        }

        next = null!;
        return false;
    }

    private AccessEvent Alone(Slot slot)
    {
        var row = slot.Row!;
        var e = slot.Event!;
        var waiting = row.IsReportExport ? _waitingExports : _waitingReports;
        if (waiting.TryGetValue(row.RequestId, out var entry) && entry == slot)
        {
            waiting.Remove(row.RequestId);
        }

        if (!row.IsReportExport || row.HasRowCount)
        {
            return e;
        }

        report.Warn(UnjoinedWarning,
            $"{e.SourceFile}:{e.SourceLine}: ReportExport row (REQUEST_ID {row.RequestId}) has no Report row with the same REQUEST_ID " +
            $"within {Window.TotalMinutes:0} minutes: scored as an export of 1 record of entity '{e.Entity}' because its row count is unknown " +
            "(and so are any others like it); read the Report event type's files of the same days too");
        return e with { Details = $"row count unknown: no Report row with REQUEST_ID {row.RequestId}" };
    }

    /// <summary>The export as the ReportExport row has it, with the object, row count and outcome of its Report row.</summary>
    private static AccessEvent Merge(AccessEvent export, AccessEvent run, bool runHasRowCount) => export with
    {
        Entity = run.Entity ?? export.Entity,
        RecordId = export.RecordId ?? run.RecordId,
        RecordCount = runHasRowCount ? run.RecordCount : export.RecordCount,
        Outcome = run.Outcome == EventOutcome.Success ? export.Outcome : run.Outcome,
        SessionId = export.SessionId ?? run.SessionId,
        SourceIp = export.SourceIp ?? run.SourceIp,
        Details = run.Details,
    };

    private void Remember(string requestId, AccessEvent merged)
    {
        _joined[requestId] = merged;
        _joinedExpiry.Enqueue((requestId, merged.UtcTicks + WindowTicks));
    }

    private void ForgetJoined()
    {
        while (_joinedExpiry.TryPeek(out var head) && head.Until < _now)
        {
            _joinedExpiry.Dequeue();
            if (_joined.TryGetValue(head.RequestId, out var joined) && joined.UtcTicks + WindowTicks == head.Until)
            {
                _joined.Remove(head.RequestId);
            }
        }
    }

    private sealed class Slot(AccessEvent e)
    {
        /// <summary>The event to release here; null when its row was joined into an event released elsewhere.</summary>
        public AccessEvent? Event { get; set; } = e;

        public SalesforceReportRow? Row { get; init; }

        public bool Waiting { get; set; }

        public long Deadline { get; set; }

        /// <summary>Copies of this row read while it waited; they are released as whatever this row becomes.</summary>
        public List<Slot>? Copies { get; set; }

        public void ForCopies(AccessEvent joined)
        {
            foreach (var copy in Copies ?? [])
            {
                copy.Event = joined;
            }
        }
    }
}
