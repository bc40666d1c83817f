using System.Text.RegularExpressions;
using CrmSecurity.AuditAnalyzer.Review.Pictures;
using Reason = CrmSecurity.AuditAnalyzer.Findings.Reason;

namespace CrmSecurity.AuditAnalyzer.Tests.Review;

/// <summary>The server-drawn pictures: scales, the typical band, local hours across daylight-saving changes, and what they say in words.</summary>
public sealed partial class PicturesTests
{
    private const string Who = "user-0a1b2c3d";
    private static readonly TimeZoneInfo LosAngeles = TimeZoneInfo.FindSystemTimeZoneById("America/Los_Angeles");
    private static readonly TimeZoneInfo Berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");

    [Theory]
    [InlineData(0.3, 1)]
    [InlineData(7, 10)]
    [InlineData(23, 50)]
    [InlineData(68, 100)]
    [InlineData(150, 200)]
    public void A_linear_axis_steps_by_one_two_or_five_times_a_power_of_ten(double rough, double step) =>
        Assert.Equal(step, LinearScale.NiceStep(rough));

    [Fact]
    public void A_linear_scale_rounds_its_top_up_to_a_tick_and_maps_zero_to_the_bottom()
    {
        var y = new LinearScale(340, bottom: 200, top: 0);

        Assert.Equal(400, y.Max);
        Assert.Equal(new double[] { 0, 100, 200, 300, 400 }, y.Ticks());
        Assert.Equal(200, y.Map(0));
        Assert.Equal(100, y.Map(200));
        Assert.Equal(0, y.Map(400));
        Assert.Equal(0, y.Map(10_000)); // clamped, never drawn above the plot
    }

    [Fact]
    public void A_log_scale_keeps_zero_at_the_bottom_and_ticks_at_powers_of_ten()
    {
        var y = new LogScale(48_000, bottom: 200, top: 0);

        Assert.Equal(new double[] { 0, 1, 10, 100, 1_000, 10_000, 100_000 }, y.Ticks());
        Assert.Equal(200, y.Map(0));
        Assert.Equal(0, y.Map(99_999), 6);
        Assert.True(y.Map(340) < y.Map(120) && y.Map(48_000) < y.Map(340));
    }

    [Fact]
    public void The_typical_band_is_the_10th_to_90th_percentile_of_ordinary_active_days()
    {
        var start = new DateOnly(2026, 3, 1);
        var days = Enumerable.Range(0, 10).Select(i => new DayVolume(start.AddDays(i), 100 * (i + 1), false))
            .Append(new DayVolume(start.AddDays(10), 0, false)) // a weekend day: not part of "typical"
            .Append(new DayVolume(start.AddDays(11), 48_000, true)) // the flagged day does not widen its own yardstick
            .ToList();

        var band = VolumeBand.Of(days)!;

        Assert.Equal(190, band.Low, 6);
        Assert.Equal(910, band.High, 6);
        Assert.Equal(550, band.Median, 6);
        Assert.Equal(10, band.Days);
        Assert.Null(VolumeBand.Of(days.Take(4)));
    }

    [Fact]
    public void The_volume_chart_says_the_typical_range_and_the_flagged_day_in_words_and_marks_it()
    {
        var start = new DateOnly(2026, 2, 21);
        var days = Enumerable.Range(0, 11).Select(i => new DayVolume(start.AddDays(i), 100 * (i + 1), false)).ToList();
        days[10] = days[10] with { Records = 48_000, Flagged = true };

        var picture = DailyVolumeChart.Build("daily-volume", Who, days, null, "No peer median: the peer group is too small.");

        Assert.Contains("Typical 190–910 a day", picture.Description, StringComparison.Ordinal);
        Assert.Contains("Flagged: 48,000 on 3 Mar.", picture.Description, StringComparison.Ordinal);
        Assert.Contains("No peer median", picture.Description, StringComparison.Ordinal);
        Assert.Contains("logarithmic", picture.Description, StringComparison.Ordinal);
        Assert.Equal(1, Regex.Count(picture.Svg, "class=\"bar bar-flagged\""));
        Assert.Equal(1, Regex.Count(picture.Svg, "class=\"flag\""));
        Assert.Equal(1, Regex.Count(picture.Svg, "class=\"band\""));
        AssertAccessibleAndClean(picture);
        Assert.Equal(11, picture.Table.Rows.Count);
        Assert.Equal(new[] { "Tue 3 Mar 2026", "48,000", "–", "flagged" }, picture.Table.Rows[10]);
    }

    [Fact]
    public void A_peer_median_is_drawn_as_a_line_and_named_in_the_description()
    {
        var start = new DateOnly(2026, 3, 1);
        var days = Enumerable.Range(0, 7).Select(i => new DayVolume(start.AddDays(i), 200, false)).ToList();

        var picture = DailyVolumeChart.Build("v", Who, days, [.. Enumerable.Repeat(150.0, 7)], null);

        Assert.Contains("class=\"peer\"", picture.Svg, StringComparison.Ordinal);
        Assert.Contains("Peer group median 150 a day", picture.Description, StringComparison.Ordinal);
        Assert.DoesNotContain("logarithmic", picture.Description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2026-03-07T10:30:00Z", 5, 2)] // Saturday 02:30 PST (UTC-8)
    [InlineData("2026-03-08T10:30:00Z", 6, 3)] // Sunday 03:30 PDT (UTC-7): clocks went forward at 02:00
    [InlineData("2026-11-01T08:30:00Z", 6, 1)] // Sunday 01:30 PDT, the first of two 01:30s
    [InlineData("2026-11-01T09:30:00Z", 6, 1)] // Sunday 01:30 PST, the second
    [InlineData("2026-11-02T17:00:00Z", 0, 9)] // Monday 09:00 PST
    public void The_heat_map_puts_each_event_in_the_users_local_hour_across_daylight_saving_changes(string utc, int day, int hour) =>
        Assert.Equal((day, hour), HourOfWeekHeatMap.Slot(DateTimeOffset.Parse(utc, System.Globalization.CultureInfo.InvariantCulture), LosAngeles));

    [Fact]
    public void The_same_utc_hour_moves_by_one_local_hour_when_berlin_changes_its_clocks()
    {
        // 07:00 UTC is 08:00 in Berlin in winter and 09:00 in summer (the change is on 29 March 2026).
        var before = HourOfWeekHeatMap.Slot(new DateTimeOffset(2026, 3, 27, 7, 0, 0, TimeSpan.Zero), Berlin);
        var after = HourOfWeekHeatMap.Slot(new DateTimeOffset(2026, 3, 30, 7, 0, 0, TimeSpan.Zero), Berlin);

        Assert.Equal((4, 8), before);
        Assert.Equal((0, 9), after);
    }

    [Theory]
    [InlineData(0, 8, 0)]
    [InlineData(1, 8, 1)]
    [InlineData(2, 8, 1)]
    [InlineData(5, 8, 3)]
    [InlineData(8, 8, 4)]
    public void Heat_levels_are_quarters_of_the_busiest_cell(int count, int max, int level) =>
        Assert.Equal(level, HourOfWeekHeatMap.Level(count, max));

    [Fact]
    public void The_heat_map_names_the_busiest_hour_the_usual_hours_and_the_events_outside_them()
    {
        var monday = new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.FromHours(-8));
        var events = Enumerable.Range(0, 5).SelectMany(d => Enumerable.Range(9, 8).Select(h => monday.AddDays(d).AddHours(h)))
            .Concat(Enumerable.Repeat(monday.AddDays(2).AddHours(10).AddMinutes(5), 3)) // Wednesday 10:00 is busiest
            .Append(monday.AddDays(3).AddHours(2).AddMinutes(24)) // one event at 02:24 on Thursday
            .ToList();

        var picture = HourOfWeekHeatMap.Build("hour-of-week", Who, events, LosAngeles, 28);

        Assert.Contains("Busiest hour: Wed 10:00 (4 events)", picture.Description, StringComparison.Ordinal);
        Assert.Contains("Usual hours (95% of events): 09:00 to 17:00; 1 events outside them.", picture.Description, StringComparison.Ordinal);
        Assert.Contains("user's own local time", picture.Description, StringComparison.Ordinal);
        Assert.Equal(7 * 24, Regex.Count(picture.Svg, "class=\"heat-[0-4]\"><title>"));
        Assert.Equal(5, Regex.Count(picture.Svg, "class=\"heat-[0-4]\"/>")); // the legend's swatches
        Assert.Equal(new[] { "Thu", "9", "02:00–17:00", "02:00 (1)" }, picture.Table.Rows[3]);
        AssertAccessibleAndClean(picture);
    }

    [Fact]
    public void The_incident_does_not_make_its_own_hour_usual()
    {
        var monday = new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.FromHours(-8));
        var days = Enumerable.Range(0, 5).SelectMany(d => Enumerable.Range(9, 8).Select(h => monday.AddDays(d).AddHours(h))).ToList();
        var night = Enumerable.Range(0, 3).Select(i => monday.AddDays(7).AddHours(2).AddMinutes(i)).ToList();

        var all = HourOfWeekHeatMap.Build("h", Who, days.Concat(night), LosAngeles, 28);
        var judged = HourOfWeekHeatMap.Build("h", Who, days.Concat(night), LosAngeles, 28, ordinary: days);

        Assert.Contains("Usual hours (95% of events): 02:00 to 17:00; 0 events outside them.", all.Description, StringComparison.Ordinal);
        Assert.Contains("Usual hours (95% of events on days without a finding): 09:00 to 17:00; 3 events outside them.", judged.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void A_spring_forward_day_has_23_hours_and_a_fall_back_day_25()
    {
        var spring = ActivityTimeline.Hours(new DateOnly(2026, 3, 8), LosAngeles, []);
        var fall = ActivityTimeline.Hours(new DateOnly(2026, 11, 1), LosAngeles, []);

        Assert.Equal(23, spring.Count);
        Assert.Equal(new[] { 0, 1, 3, 4 }, spring.Take(4).Select(h => h.LocalHour));
        Assert.Equal(8, spring[0].UtcHour);
        Assert.Equal(25, fall.Count);
        Assert.Equal(new[] { 0, 1, 1, 2 }, fall.Take(4).Select(h => h.LocalHour));
        Assert.Equal(new[] { 7, 8, 9, 10 }, fall.Take(4).Select(h => h.UtcHour));
    }

    [Fact]
    public void The_timeline_highlights_the_events_behind_the_finding_in_local_time_and_utc()
    {
        var day = new DateOnly(2026, 12, 3);
        var at = new DateTimeOffset(2026, 12, 3, 2, 24, 0, TimeSpan.FromHours(-8));
        TimelineEvent[] events =
        [
            new(at.AddMinutes(-4), "login", 1, false),
            new(at, "export", 12_000, true),
            new(at.AddHours(7), "read", 1, false),
            new(at.AddHours(7).AddMinutes(3), "read", 1, false),
            new(at.AddDays(1), "read", 1, false), // the next day: not drawn
        ];

        var picture = ActivityTimeline.Build("finding-day", Who, day, LosAngeles, events);

        Assert.Contains("4 events of user-0a1b2c3d on Thu 3 Dec 2026", picture.Description, StringComparison.Ordinal);
        Assert.Contains("export of 12,000 record(s) at 02:24 local (10:24 UTC)", picture.Description, StringComparison.Ordinal);
        Assert.Equal(1, Regex.Count(picture.Svg, "class=\"bar bar-flagged\""));
        Assert.Equal(new[] { "02:00", "10:00", "2", "1", "12,001" }, picture.Table.Rows[0]);
        Assert.Equal(new[] { "09:00", "17:00", "2", "0", "2" }, picture.Table.Rows[1]);
        AssertAccessibleAndClean(picture);
    }

    [Fact]
    public void Daily_volume_counts_records_read_or_exported_on_the_users_local_day()
    {
        var first = new DateOnly(2026, 3, 1);
        EventPoint[] events =
        [
            new("u", new DateTimeOffset(2026, 3, 3, 7, 30, 0, TimeSpan.Zero), "export", 500, "a"), // 2 March 23:30 in Los Angeles
            new("u", new DateTimeOffset(2026, 3, 3, 17, 0, 0, TimeSpan.Zero), "read", 1, "b"),
            new("u", new DateTimeOffset(2026, 3, 3, 17, 5, 0, TimeSpan.Zero), "login", 1, "c"), // not a read
            new("u", new DateTimeOffset(2026, 3, 3, 17, 6, 0, TimeSpan.Zero), "update", 7, "d"), // not a read
        ];

        var days = PictureQueries.Daily(events, LosAngeles, first, 3, new HashSet<DateOnly> { first.AddDays(2) });

        Assert.Equal(new double[] { 0, 500, 1 }, days.Select(d => d.Records));
        Assert.Equal(new[] { false, false, true }, days.Select(d => d.Flagged));
    }

    [Fact]
    public void The_peer_median_counts_a_peer_without_events_as_zero_that_day()
    {
        var first = new DateOnly(2026, 3, 2);
        var noon = new DateTimeOffset(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);
        EventPoint[] events = [new("p1", noon, "read", 100, "1"), new("p2", noon, "read", 300, "2"), new("p3", noon.AddDays(1), "read", 50, "3")];

        var median = PictureQueries.PeerMedian(events, [("p1", TimeZoneInfo.Utc), ("p2", TimeZoneInfo.Utc), ("p3", TimeZoneInfo.Utc)], first, 2);

        Assert.Equal(new double[] { 100, 0 }, median);
    }

    [Fact]
    public void Every_picture_names_the_user_by_pseudonym_only_and_encodes_what_it_writes()
    {
        var day = new DateOnly(2026, 3, 2);
        var pictures = new[]
        {
            DailyVolumeChart.Build("a", Who, [new DayVolume(day, 10, false)], null, null),
            HourOfWeekHeatMap.Build("b", Who, [new DateTimeOffset(2026, 3, 2, 9, 0, 0, TimeSpan.Zero)], TimeZoneInfo.Utc, 60),
            ActivityTimeline.Build("c", Who, day, TimeZoneInfo.Utc, [new(new DateTimeOffset(2026, 3, 2, 9, 0, 0, TimeSpan.Zero), "<script>alert(1)</script>", 1, true)]),
        };

        foreach (var picture in pictures)
        {
            Assert.Contains(Who, picture.Title, StringComparison.Ordinal);
            Assert.Contains($"<title id=\"{picture.Id}-title\">{picture.Title}</title>", picture.Svg, StringComparison.Ordinal);
            AssertAccessibleAndClean(picture);
        }

        Assert.Contains("&lt;script&gt;", pictures[2].Svg, StringComparison.Ordinal);
    }

    [Fact]
    public void An_odd_hours_reason_says_how_often_the_user_works_that_hour_and_when_they_usually_work_instead_of_typical_0_actual_1()
    {
        var reason = new Reason("odd_hours.rare_hour", 40, "active Sunday 02:00-02:59 local: typical share of active days at this hour for this user 0%, actual active; no data touched", 0, 1);

        var (typical, actual) = ReasonDisplay.Of(reason, (9, 16));

        Assert.Equal("active at this hour on 0% of their active days; usual hours 09:00–17:00 local", typical);
        Assert.Equal("active Sunday 02:00–02:59 local", actual);
    }

    [Fact]
    public void Other_reasons_keep_their_numbers()
    {
        var reason = new Reason("bulk_export.records", 80, "rows exported today", 120, 48_000);

        Assert.Equal(("120", "48,000"), ReasonDisplay.Of(reason, (9, 16)));
    }

    private static void AssertAccessibleAndClean(Picture picture)
    {
        Assert.StartsWith($"<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{picture.Id}\"", picture.Svg, StringComparison.Ordinal);
        Assert.Contains("role=\"img\"", picture.Svg, StringComparison.Ordinal);
        Assert.Contains($"aria-labelledby=\"{picture.Id}-title {picture.Id}-desc\"", picture.Svg, StringComparison.Ordinal);
        Assert.Contains($"<desc id=\"{picture.Id}-desc\">", picture.Svg, StringComparison.Ordinal);
        Assert.DoesNotContain("style=", picture.Svg, StringComparison.OrdinalIgnoreCase); // CSP: style-src 'self', no inline style
        Assert.DoesNotContain("<script", picture.Svg, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(" fill=", picture.Svg, StringComparison.Ordinal); // colours come from the design system's classes
        Assert.EndsWith("</svg>", picture.Svg, StringComparison.Ordinal);
    }
}
