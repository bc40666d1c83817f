namespace CrmSecurity.AuditAnalyzer.Review.Pictures;

/// <summary>
/// When a user works: events per hour of the week in the user's own local time (the directory's time zone), converted
/// instant by instant so that daylight-saving changes inside the period put each event in the hour its user lived it.
/// Five shades (none and four quarters of the busiest cell), with a legend; the busiest hour and the usual hours in words.
/// </summary>
internal static class HourOfWeekHeatMap
{
    public static readonly string[] DayNames = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    private const double Left = 44;
    private const double Top = 22;
    private const double Cell = 26;
    private const double Row = 20;
    private const double Width = Left + (24 * Cell) + 8;
    private const double Height = Top + (7 * Row) + 48;

    /// <summary>Monday-first day (0-6) and hour (0-23) of the instant in <paramref name="zone"/>.</summary>
    public static (int Day, int Hour) Slot(DateTimeOffset instant, TimeZoneInfo zone)
    {
        var local = TimeZoneInfo.ConvertTime(instant, zone);
        return (((int)local.DayOfWeek + 6) % 7, local.Hour);
    }

    /// <summary>Counts per [day, hour].</summary>
    public static int[,] Count(IEnumerable<DateTimeOffset> instants, TimeZoneInfo zone)
    {
        var counts = new int[7, 24];
        foreach (var instant in instants)
        {
            var (day, hour) = Slot(instant, zone);
            counts[day, hour]++;
        }

        return counts;
    }

    /// <summary>0 for none, else 1-4 by quarter of the busiest cell.</summary>
    public static int Level(int count, int max) => count <= 0 || max <= 0 ? 0 : Math.Clamp((int)Math.Ceiling(4.0 * count / max), 1, 4);

    /// <summary>The earliest and latest hour of the day holding the middle 95% of events (hours over all days), or null without events.</summary>
    public static (int From, int To)? UsualHours(int[,] counts)
    {
        var byHour = Enumerable.Range(0, 24).Select(h => Enumerable.Range(0, 7).Sum(d => counts[d, h])).ToArray();
        var total = byHour.Sum();
        if (total == 0)
        {
            return null;
        }

        var cut = total * .025;
        int from = 0, to = 23;
        for (double seen = 0; from < 23 && seen + byHour[from] <= cut; from++)
        {
            seen += byHour[from];
        }

        for (double seen = 0; to > from && seen + byHour[to] <= cut; to--)
        {
            seen += byHour[to];
        }

        return (from, to);
    }

    /// <param name="id">The element id.</param>
    /// <param name="who">The pseudonym.</param>
    /// <param name="instants">When each event happened.</param>
    /// <param name="zone">The user's time zone (UTC when the directory has none).</param>
    /// <param name="days">How many days the instants cover, for the description.</param>
    /// <param name="ordinary">The instants usual hours are judged from (events of days without a finding), when not all of them.</param>
    public static Picture Build(string id, string who, IEnumerable<DateTimeOffset> instants, TimeZoneInfo zone, int days, IEnumerable<DateTimeOffset>? ordinary = null)
    {
        var counts = Count(instants, zone);
        var max = 0;
        var total = 0;
        (int Day, int Hour) busiest = (0, 0);
        for (var d = 0; d < 7; d++)
        {
            for (var h = 0; h < 24; h++)
            {
                total += counts[d, h];
                if (counts[d, h] > max)
                {
                    max = counts[d, h];
                    busiest = (d, h);
                }
            }
        }

        // The incident being judged must not make its own hour usual: usual hours come from ordinary days when given.
        var usual = UsualHours(ordinary is null ? counts : Count(ordinary, zone)) ?? UsualHours(counts);
        var zoneWords = zone == TimeZoneInfo.Utc ? "UTC (the directory gives no time zone)" : "the user's own local time (daylight saving applied)";
        var title = $"When {who} was active: events by hour of the week";
        var description = total == 0
            ? $"{who} has no events in the last {days} days."
            : $"{PictureText.Count(total)} events of {who} over the last {days} days by hour of the week, in {zoneWords}. "
              + $"Busiest hour: {DayNames[busiest.Day]} {PictureText.Hour(busiest.Hour)} ({PictureText.Count(max)} events). "
              + $"Usual hours (95% of events{(ordinary is null ? "" : " on days without a finding")}): {PictureText.Hour(usual!.Value.From)} to {PictureText.Hour((usual.Value.To + 1) % 24)}; "
              + $"{PictureText.Count(Outside(counts, usual.Value))} events outside them.";
        var svg = new SvgWriter(id, Width, Height, "chart-heat", title, description);
        for (var h = 0; h < 24; h += 3)
        {
            svg.Text(Left + (h * Cell) + (Cell / 2), Top - 8, h.ToString("00", System.Globalization.CultureInfo.InvariantCulture), "label-middle");
        }

        for (var d = 0; d < 7; d++)
        {
            svg.Text(Left - 6, Top + (d * Row) + 14, DayNames[d], "label-end");
            for (var h = 0; h < 24; h++)
            {
                svg.Rect(Left + (h * Cell) + 1, Top + (d * Row) + 1, Cell - 2, Row - 2, $"heat-{Level(counts[d, h], max)}",
                    $"{DayNames[d]} {PictureText.Hour(h)}: {PictureText.Count(counts[d, h])} events");
            }
        }

        // Legend: the five shades and what each stands for.
        var legendY = Top + (7 * Row) + 14;
        svg.Text(Left, legendY + 11, "events:");
        var x = Left + 52;
        for (var level = 0; level <= 4; level++)
        {
            svg.Rect(x, legendY, 16, 14, $"heat-{level}").Text(x + 20, legendY + 11, LegendLabel(level, max));
            x += 112;
        }

        var rows = Enumerable.Range(0, 7).Select(d =>
        {
            var hours = Enumerable.Range(0, 24).Where(h => counts[d, h] > 0).ToList();
            var top = hours.Count == 0 ? -1 : hours.MaxBy(h => counts[d, h]);
            return (IReadOnlyList<string>)
            [
                DayNames[d], PictureText.Count(hours.Sum(h => counts[d, h])),
                hours.Count == 0 ? "–" : $"{PictureText.Hour(hours[0])}–{PictureText.Hour((hours[^1] + 1) % 24)}",
                top < 0 ? "–" : $"{PictureText.Hour(top)} ({PictureText.Count(counts[d, top])})",
            ];
        }).ToList();
        var table = new PictureTable($"Events of {who} by day of the week, in {(zone == TimeZoneInfo.Utc ? "UTC" : "the user's local time")}",
            ["Day", "Events", "First to last active hour", "Busiest hour"], rows);
        return new Picture(id, title, description, svg.Build(), table);
    }

    private static int Outside(int[,] counts, (int From, int To) usual)
    {
        var n = 0;
        for (var d = 0; d < 7; d++)
        {
            for (var h = 0; h < 24; h++)
            {
                if (h < usual.From || h > usual.To)
                {
                    n += counts[d, h];
                }
            }
        }

        return n;
    }

    private static string LegendLabel(int level, int max)
    {
        if (level == 0)
        {
            return "none";
        }

        // Level k holds counts above (k-1)/4 of the busiest cell up to k/4 of it.
        var low = (int)Math.Floor(max * (level - 1) / 4.0) + 1;
        var high = (int)Math.Floor(max * level / 4.0);
        return high < low ? "–" : high == low ? PictureText.Count(low) : $"{PictureText.Count(low)}–{PictureText.Count(high)}";
    }
}
