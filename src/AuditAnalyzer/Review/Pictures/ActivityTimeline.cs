namespace CrmSecurity.AuditAnalyzer.Review.Pictures;

/// <summary>One event of the day: when, what, how many records, and whether it is behind the finding.</summary>
internal sealed record TimelineEvent(DateTimeOffset Timestamp, string Action, double Records, bool Flagged);

/// <summary>One hour of the user's local day (23 or 25 of them on a daylight-saving change).</summary>
internal sealed record TimelineHour(DateTimeOffset Start, int LocalHour, int UtcHour, int Events, int Flagged, double Records);

/// <summary>
/// The finding's day as the user lived it: events per hour of their local calendar day, the events behind the finding
/// in red on top of the rest, each hour labelled in local time and in UTC.
/// </summary>
internal static class ActivityTimeline
{
    private const double Left = 44;
    private const double Top = 22;
    private const double PlotHeight = 150;
    private const double Cell = 26;

    /// <summary>
    /// The hours of <paramref name="day"/> in <paramref name="zone"/>, from its local midnight to the next, stepping in
    /// real hours: a spring-forward day has 23, a fall-back day 25 (the repeated hour appears twice, once per offset).
    /// </summary>
    public static IReadOnlyList<TimelineHour> Hours(DateOnly day, TimeZoneInfo zone, IEnumerable<TimelineEvent> events)
    {
        var start = LocalMidnight(day, zone);
        var end = LocalMidnight(day.AddDays(1), zone);
        var hours = new List<TimelineHour>();
        var list = events.Where(e => e.Timestamp >= start && e.Timestamp < end).ToList();
        for (var at = start; at < end; at = at.AddHours(1))
        {
            var next = at.AddHours(1);
            var inside = list.Where(e => e.Timestamp >= at && e.Timestamp < next).ToList();
            hours.Add(new TimelineHour(at, TimeZoneInfo.ConvertTime(at, zone).Hour, at.UtcDateTime.Hour, inside.Count, inside.Count(e => e.Flagged), inside.Sum(e => e.Records)));
        }

        return hours;
    }

    /// <summary>The instant the local day begins (the first valid local time at or after midnight).</summary>
    public static DateTimeOffset LocalMidnight(DateOnly day, TimeZoneInfo zone)
    {
        var local = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified);
        while (zone.IsInvalidTime(local))
        {
            local = local.AddMinutes(30); // a zone that skips midnight itself (some do) starts the day at the first valid time
        }

        // An ambiguous midnight takes the earlier (daylight) offset, the first moment of the day.
        var offset = zone.IsAmbiguousTime(local) ? zone.GetAmbiguousTimeOffsets(local).Max() : zone.GetUtcOffset(local);
        return new DateTimeOffset(local, offset).ToUniversalTime();
    }

    /// <param name="id">The element id.</param>
    /// <param name="who">The pseudonym.</param>
    /// <param name="day">The user's local calendar day of the finding.</param>
    /// <param name="zone">The user's time zone (UTC when the directory has none).</param>
    /// <param name="events">The user's events of that day.</param>
    public static Picture Build(string id, string who, DateOnly day, TimeZoneInfo zone, IReadOnlyList<TimelineEvent> events)
    {
        var hours = Hours(day, zone, events);
        var width = Left + (hours.Count * Cell) + 8;
        var height = Top + PlotHeight + 58;
        var y = new LinearScale(hours.Count == 0 ? 1 : hours.Max(h => h.Events), Top + PlotHeight, Top, 4);
        var inDay = events.Where(e => e.Timestamp >= hours[0].Start && e.Timestamp < hours[^1].Start.AddHours(1)).OrderBy(e => e.Timestamp).ToList();
        var flagged = inDay.Where(e => e.Flagged).ToList();
        var local = zone == TimeZoneInfo.Utc ? "UTC" : "local";

        var title = $"Activity of {who} on {PictureText.LongDay(day)}, events per hour";
        var parts = new List<string>
        {
            inDay.Count == 0
                ? $"{who} has no events on {PictureText.LongDay(day)} ({(zone == TimeZoneInfo.Utc ? "UTC" : "the user's local day")})."
                : $"{PictureText.Count(inDay.Count)} events of {who} on {PictureText.LongDay(day)} ({(zone == TimeZoneInfo.Utc ? "UTC" : "the user's local day")}) in {hours.Count(h => h.Events > 0)} of {hours.Count} hours, "
                  + $"first at {Both(inDay[0].Timestamp, zone)}, last at {Both(inDay[^1].Timestamp, zone)}.",
        };
        if (flagged.Count > 0)
        {
            parts.Add($"{flagged.Count} event(s) behind the finding, in red: " + string.Join("; ", flagged.Take(5).Select(e =>
                $"{e.Action} of {PictureText.Count(e.Records)} record(s) at {Both(e.Timestamp, zone)}")) + (flagged.Count > 5 ? "; and more." : "."));
        }

        if (hours.Count != 24)
        {
            parts.Add($"This day has {hours.Count} hours: the clocks changed.");
        }

        var description = string.Join(' ', parts);
        var svg = new SvgWriter(id, width, height, "chart-timeline", title, description);
        foreach (var tick in y.Ticks())
        {
            svg.Line(Left, y.Map(tick), width - 8, y.Map(tick), "grid").Text(Left - 6, y.Map(tick) + 4, PictureText.Count(tick), "label-end");
        }

        for (var i = 0; i < hours.Count; i++)
        {
            var h = hours[i];
            var x = Left + (i * Cell);
            var tip = $"{PictureText.Hour(h.LocalHour)} {local} ({PictureText.Hour(h.UtcHour)} UTC): {h.Events} events, {PictureText.Count(h.Records)} records{(h.Flagged > 0 ? $", {h.Flagged} flagged" : "")}";
            var normalTop = y.Map(h.Events - h.Flagged);
            svg.Rect(x + 3, normalTop, Cell - 6, Top + PlotHeight - normalTop, "bar", tip);
            if (h.Flagged > 0)
            {
                svg.Rect(x + 3, y.Map(h.Events), Cell - 6, normalTop - y.Map(h.Events), "bar bar-flagged", tip).Marker(x + (Cell / 2), y.Map(h.Events) - 2, "flag", tip);
            }

            if (i % 3 == 0)
            {
                svg.Text(x + (Cell / 2), Top + PlotHeight + 16, h.LocalHour.ToString("00", System.Globalization.CultureInfo.InvariantCulture), "label-middle");
                if (zone != TimeZoneInfo.Utc)
                {
                    svg.Text(x + (Cell / 2), Top + PlotHeight + 32, h.UtcHour.ToString("00", System.Globalization.CultureInfo.InvariantCulture), "label-middle label-utc");
                }
            }
        }

        svg.Line(Left, Top + PlotHeight, width - 8, Top + PlotHeight, "axis");
        svg.Text(4, Top + PlotHeight + 16, local).Text(4, Top + PlotHeight + 32, zone == TimeZoneInfo.Utc ? "" : "UTC");
        svg.Text(Left, height - 6, "events per hour; red: the events behind the finding");

        var rows = hours.Where(h => h.Events > 0).Select(h => (IReadOnlyList<string>)
            [PictureText.Hour(h.LocalHour), PictureText.Hour(h.UtcHour), PictureText.Count(h.Events), PictureText.Count(h.Flagged), PictureText.Count(h.Records)]).ToList();
        var table = new PictureTable($"Events of {who} per hour on {PictureText.LongDay(day)}",
            [$"Hour ({local})", "Hour (UTC)", "Events", "Behind the finding", "Records"], rows);
        return new Picture(id, title, description, svg.Build(), table);
    }

    private static string Both(DateTimeOffset instant, TimeZoneInfo zone) =>
        zone == TimeZoneInfo.Utc ? $"{PictureText.Clock(instant.ToUniversalTime())} UTC" : $"{PictureText.Clock(TimeZoneInfo.ConvertTime(instant, zone))} local ({PictureText.Clock(instant.ToUniversalTime())} UTC)";
}
