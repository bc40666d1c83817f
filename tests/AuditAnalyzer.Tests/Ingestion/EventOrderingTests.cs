using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Ingestion;

namespace CrmSecurity.AuditAnalyzer.Tests.Ingestion;

public sealed class EventOrderingTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 2, 9, 0, 0, TimeSpan.Zero);

    private static AccessEvent At(int minutes, string? id = null) => new()
    {
        Timestamp = Start.AddMinutes(minutes),
        UserId = "u1",
        Action = AccessAction.Read,
        EventId = id ?? $"m{minutes}",
        HasSourceId = id is not null,
        SourceFile = "events.jsonl",
        SourceLine = minutes,
    };

    [Fact]
    public void Events_out_of_order_within_the_lateness_are_scored_in_timestamp_order()
    {
        var ordering = new EventOrdering(TimeSpan.FromMinutes(30), new IngestionReport());
        var ready = new List<AccessEvent>();
        foreach (var minutes in new[] { 0, 20, 10, 25, 5, 60, 45, 100 })
        {
            ordering.Add(At(minutes), ready);
        }

        ordering.Complete(ready);

        Assert.Equal([0, 5, 10, 20, 25, 45, 60, 100], ready.Select(e => (int)(e.Timestamp - Start).TotalMinutes));
    }

    [Fact]
    public void An_event_older_than_what_was_already_scored_is_rejected_as_late_with_its_line()
    {
        var report = new IngestionReport();
        var ordering = new EventOrdering(TimeSpan.FromMinutes(30), report);
        var ready = new List<AccessEvent>();
        ordering.Add(At(0), ready);
        ordering.Add(At(120), ready); // releases minute 0
        ordering.Add(At(50), ready); // older than released? no: 50 > 0, held
        ordering.Add(At(200), ready); // releases 50 and 120
        ordering.Add(At(100), ready); // 100 < 120 already scored: late

        Assert.Equal(1, report.Count(RejectReason.Late));
        Assert.StartsWith("events.jsonl:100: later_than_lateness", report.Examples[0].ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_repeated_event_id_is_dropped_and_ids_are_forgotten_once_older_than_the_window()
    {
        var report = new IngestionReport();
        var ordering = new EventOrdering(TimeSpan.FromMinutes(10), report);
        var ready = new List<AccessEvent>();
        ordering.Add(At(0, "a"), ready);
        ordering.Add(At(0, "a"), ready);
        for (var m = 1; m <= 1000; m++)
        {
            ordering.Add(At(m, $"id{m}"), ready);
        }

        Assert.Equal(1, report.Count(RejectReason.Duplicate));
        Assert.InRange(ordering.RememberedIds, 1, 25); // bounded by the window, not by the 1,001 ids read
    }

    [Fact]
    public void Events_up_to_the_previous_runs_watermark_are_skipped_as_already_analysed()
    {
        var report = new IngestionReport();
        var ordering = new EventOrdering(TimeSpan.FromMinutes(10), report, resumeAfter: Start.AddMinutes(5));
        var ready = new List<AccessEvent>();
        ordering.Add(At(5), ready);
        ordering.Add(At(6), ready);
        ordering.Complete(ready);

        Assert.Equal(6, (int)(Assert.Single(ready).Timestamp - Start).TotalMinutes);
        Assert.Equal(1, report.Count(RejectReason.AlreadyAnalysed));
    }
}
