namespace CrmSecurity.AuditAnalyzer.Review.Pictures;

/// <summary>One of the user's local calendar days: records read or exported, and whether a finding began that day.</summary>
internal sealed record DayVolume(DateOnly Day, double Records, bool Flagged);

/// <summary>
/// The user's own typical range: the 10th to 90th percentile of their active days (days with any record read), with
/// flagged days left out so the incident being judged does not widen the range it is judged against.
/// </summary>
internal sealed record VolumeBand(double Low, double High, double Median, int Days)
{
    /// <summary>Fewer active days than this give no range: two or three days say nothing about "typical".</summary>
    public const int MinDays = 5;

    public static VolumeBand? Of(IEnumerable<DayVolume> days)
    {
        var values = days.Where(d => !d.Flagged && d.Records > 0).Select(d => d.Records).Order().ToList();
        return values.Count < MinDays
            ? null
            : new VolumeBand(Percentiles.Of(values, .10), Percentiles.Of(values, .90), Percentiles.Of(values, .50), values.Count);
    }
}

/// <summary>
/// Records read or exported per day as bars, against the user's typical range (a shaded band) and their peer group's
/// median (a dashed line); flagged days are red and carry a marker. A logarithmic axis when the largest day is more
/// than twenty times the top of the range, so both the range and the spike stay readable.
/// </summary>
internal static class DailyVolumeChart
{
    private const double Width = 720;
    private const double Height = 260;
    private const double Left = 60;
    private const double Right = 12;
    private const double Top = 18;
    private const double Bottom = 40;

    /// <param name="id">The element id (unique on the page).</param>
    /// <param name="who">The pseudonym: the only name a picture ever gives the user.</param>
    /// <param name="days">Consecutive days, oldest first.</param>
    /// <param name="peerMedian">Per day the peer group's median, or null where it is not shown (see <paramref name="peerNote"/>).</param>
    /// <param name="peerNote">Why there is no peer line, in words, when there is none.</param>
    public static Picture Build(string id, string who, IReadOnlyList<DayVolume> days, IReadOnlyList<double>? peerMedian, string? peerNote)
    {
        var band = VolumeBand.Of(days);
        var max = Math.Max(days.Count == 0 ? 0 : days.Max(d => d.Records), Math.Max(band?.High ?? 0, peerMedian is { Count: > 0 } ? peerMedian.Max() : 0));
        var logarithmic = max > 20 * Math.Max(band?.High ?? 1, 1);
        IScale y = logarithmic ? new LogScale(max, Height - Bottom, Top) : new LinearScale(max, Height - Bottom, Top);
        var plot = Width - Left - Right;
        var slot = days.Count == 0 ? plot : plot / days.Count;
        double X(int i) => Left + (i * slot);

        var title = $"Records read or exported per day by {who}, against their typical range";
        var description = Describe(who, days, band, peerMedian, peerNote, logarithmic);
        var svg = new SvgWriter(id, Width, Height, "chart-volume", title, description);

        foreach (var tick in y.Ticks())
        {
            svg.Line(Left, y.Map(tick), Width - Right, y.Map(tick), "grid").Text(Left - 6, y.Map(tick) + 4, Short(tick), "label-end");
        }

        if (band is not null)
        {
            svg.Rect(Left, y.Map(band.High), plot, y.Map(band.Low) - y.Map(band.High), "band",
                $"typical range {PictureText.Count(band.Low)}–{PictureText.Count(band.High)} a day");
        }

        for (var i = 0; i < days.Count; i++)
        {
            var d = days[i];
            var top = y.Map(d.Records);
            var tip = $"{PictureText.Day(d.Day)}: {PictureText.Count(d.Records)} records{(d.Flagged ? " (flagged)" : "")}";
            svg.Rect(X(i) + (slot * .15), top, slot * .7, Height - Bottom - top, d.Flagged ? "bar bar-flagged" : "bar", tip);
            if (d.Flagged)
            {
                svg.Marker(X(i) + (slot / 2), top - 2, "flag", tip);
            }

            if (i % 7 == 0 || i == days.Count - 1)
            {
                svg.Text(X(i) + (slot / 2), Height - Bottom + 16, PictureText.Day(d.Day), "label-middle");
            }
        }

        if (peerMedian is { Count: > 0 } && peerMedian.Count == days.Count)
        {
            svg.Polyline(peerMedian.Select((v, i) => (X(i) + (slot / 2), y.Map(v))), "peer");
        }

        svg.Line(Left, Height - Bottom, Width - Right, Height - Bottom, "axis").Line(Left, Top, Left, Height - Bottom, "axis");
        svg.Text(Left, Height - 6, logarithmic ? "records a day (logarithmic scale); shaded: typical range; dashed: peer median" : "records a day; shaded: typical range; dashed: peer median");

        var rows = days.Select((d, i) => (IReadOnlyList<string>)
            [PictureText.LongDay(d.Day), PictureText.Count(d.Records), peerMedian is { } p && p.Count == days.Count ? PictureText.Count(p[i]) : "–", d.Flagged ? "flagged" : ""]).ToList();
        var table = new PictureTable($"Records read or exported per day by {who}", ["Day (user's local date)", "Records", "Peer median", "Finding"], rows);
        return new Picture(id, title, description, svg.Build(), table);
    }

    internal static string Describe(string who, IReadOnlyList<DayVolume> days, VolumeBand? band, IReadOnlyList<double>? peerMedian, string? peerNote, bool logarithmic)
    {
        if (days.Count == 0)
        {
            return $"No days to show for {who}.";
        }

        var parts = new List<string>
        {
            $"{who} read or exported records on {days.Count(d => d.Records > 0)} of {days.Count} days from {PictureText.Day(days[0].Day)} to {PictureText.LongDay(days[^1].Day)}.",
            band is null
                ? $"Too few ordinary active days (fewer than {VolumeBand.MinDays}) for a typical range."
                : $"Typical {PictureText.Count(band.Low)}–{PictureText.Count(band.High)} a day (10th to 90th percentile of {band.Days} active days without a finding; median {PictureText.Count(band.Median)}).",
        };
        var flagged = days.Where(d => d.Flagged).ToList();
        parts.Add(flagged.Count == 0
            ? "No flagged days."
            : "Flagged: " + string.Join("; ", flagged.Select(d => $"{PictureText.Count(d.Records)} on {PictureText.Day(d.Day)}")) + ".");
        if (peerMedian is { Count: > 0 })
        {
            var sorted = peerMedian.Order().ToList();
            parts.Add($"Peer group median {PictureText.Count(Percentiles.Of(sorted, .5))} a day (the median of its daily medians).");
        }
        else if (peerNote is not null)
        {
            parts.Add(peerNote);
        }

        if (logarithmic)
        {
            parts.Add("The axis is logarithmic.");
        }

        return string.Join(' ', parts);
    }

    private static string Short(double value) => value switch
    {
        >= 1_000_000 => PictureText.Count(value / 1_000_000) + "M",
        >= 10_000 => PictureText.Count(value / 1_000) + "k",
        _ => PictureText.Count(value),
    };
}
