using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>The <c>snooping</c> section of the policy.</summary>
internal sealed record SnoopingPolicy
{
    /// <summary>A business unit whose records the user read on at least this many earlier days is part of their book ...</summary>
    public int BookDays { get; init; } = 3;

    /// <summary>... and on at least this share of their active days (a unit glimpsed now and then over months is not their territory).</summary>
    public double BookShare { get; init; } = 0.1;

    /// <summary>Distinct records read outside the book in one day below which nothing is said.</summary>
    public double MinRecords { get; init; } = 30;

    /// <summary>And above this many times the most the user read outside their book on any day of their history.</summary>
    public double OverHistoryMax { get; init; } = 3;

    /// <summary>
    /// For sources that name records but not their owner or unit: distinct records read in a day below which nothing
    /// is said (the signal is then "many more records than ever", which is weaker, so the floor is higher).
    /// </summary>
    public double MinDistinctRecords { get; init; } = 150;

    /// <summary>Reads the policy file's section, each problem named with file, line and setting.</summary>
    internal static SnoopingPolicy Read(PolicySection s)
    {
        var d = new SnoopingPolicy();
        var result = new SnoopingPolicy
        {
            BookDays = s.Integer("book_days", d.BookDays, 1, 365),
            BookShare = s.Number("book_share", d.BookShare, 0, 1),
            MinRecords = s.Number("min_records", d.MinRecords, 1, 10_000_000),
            OverHistoryMax = s.Number("over_history_max", d.OverHistoryMax, 1, 100),
            MinDistinctRecords = s.Number("min_distinct_records", d.MinDistinctRecords, 1, 10_000_000),
        };
        s.RejectUnknown();
        return result;
    }
}
