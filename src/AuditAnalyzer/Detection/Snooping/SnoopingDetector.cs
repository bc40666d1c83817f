using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Record snooping: a user opens many distinct records outside their usual book (business units they do not belong to
/// and rarely read), exporting nothing, which no volume detector sees because each read is one record. With events
/// that carry <c>record_business_unit</c> (and <c>record_owner</c>) the day's distinct outside-book records are judged
/// against the most the user ever read outside their book; without them, the day's distinct records against the most
/// they ever opened. Silent in learning mode (cold start: a new user's every unit is new). A pure function of the
/// event, the day's <see cref="SnoopingDay"/> and the baselines.
/// </summary>
internal sealed class SnoopingDetector : IDetector
{
    public static SnoopingDetector Instance { get; } = new();

    public string Name => DetectorNames.Snooping;

    /// <summary>ECS event.category: reads of business records.</summary>
    public string EcsCategory => "database";

    public IReadOnlyList<string> Codes { get; } = [ReasonCodes.RecordsOutsideBook, ReasonCodes.DistinctRecords];

    public void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        if (!SnoopingDay.IsRecordRead(e) || view.Profile.Learning || view.Snooping is not { } day)
        {
            return;
        }

        var rules = policy.Snooping;
        var today = view.Baseline.Today;
        var outside = e.RecordBusinessUnit is not null;
        var counter = outside ? DayCounters.OutsideBook : DayCounters.DistinctRecords;
        var actual = today.Counters[counter];
        // Step: report on crossing and again each time the day grows by a quarter, not on every read after it.
        if (actual <= 0 || actual < day.LastReported * 1.25)
        {
            return;
        }

        var stats = view.Profile.Counter(counter);
        var floor = outside ? rules.MinRecords : rules.MinDistinctRecords;
        if (!outside && stats.Max <= 0)
        {
            return; // this source never named records before: no normal to compare with
        }

        var threshold = Math.Max(floor, rules.OverHistoryMax * stats.Max);
        if (actual <= threshold)
        {
            return;
        }

        day.LastReported = actual;
        var code = outside ? ReasonCodes.RecordsOutsideBook : ReasonCodes.DistinctRecords;
        var score = ScoreCurve.Over(actual, threshold, 60) * policy.Weight(code);
        var text = outside
            ? $"distinct records read today outside their book (units {string.Join(", ", day.OutsideUnits.Order(StringComparer.OrdinalIgnoreCase).Take(5))}; {day.OutsideOwners} owners, the most-read owner's {day.TopOwnerRecords} left out): typical at most {Numbers.N(stats.Max)} a day, actual {Numbers.N(actual)}"
            : $"distinct records read today: typical at most {Numbers.N(stats.Max)} a day, actual {Numbers.N(actual)}";
        List<string> evidence = outside ? [.. day.Evidence] : [.. DetectorSignals.Evidence(view, e)];
        if (!evidence.Contains(e.EventId))
        {
            evidence.Add(e.EventId);
        }

        signals.Add(new Signal(new Reason(code, Math.Round(Math.Min(100, score), 1), text, stats.Max, actual), e.Timestamp, evidence, false));
    }
}

/// <summary>The detector's name in findings.</summary>
internal static partial class DetectorNames
{
    public const string Snooping = "snooping";
}

/// <summary>The detector's stable reason codes.</summary>
internal static partial class ReasonCodes
{
    public const string RecordsOutsideBook = "snooping.records_outside_book";

    public const string DistinctRecords = "snooping.distinct_records";
}
