using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Review.Pictures;

/// <summary>One stored event as the pictures need it: whose, when, what, how many records, its id as the finding names it.</summary>
internal sealed record EventPoint(string UserId, DateTimeOffset Timestamp, string Action, double Records, string EventId);

/// <summary>The pictures of a user (and of one finding's day), as a reviewer sees them before a reveal.</summary>
/// <param name="Volume">Records read or exported per day against the user's range and peers.</param>
/// <param name="HourOfWeek">Events by hour of the week in the user's local time.</param>
/// <param name="Timeline">The finding's day, hour by hour (on a finding's page only).</param>
/// <param name="UsualHours">The hours of the day holding 95% of the user's events, in their local time (null without events).</param>
internal sealed record UserPictures(Picture Volume, Picture HourOfWeek, Picture? Timeline, (int From, int To)? UsualHours);

/// <summary>
/// Reads the stored events behind the pictures. Only the pseudonym goes into a picture; the user id is used to select
/// rows and never leaves this class. A peer group's median is drawn only where the group may be named before a
/// reveal (<see cref="PeerGroupSizes"/>, k-anonymity): the median of three people says too much about each of them.
/// </summary>
internal static class PictureQueries
{
    /// <summary>Days of the volume chart and the heat map.</summary>
    public const int Days = 60;

    /// <summary>Most peers whose events are read for the median (a sample beyond it, named in the description).</summary>
    public const int MaxPeers = 100;

    /// <summary>Most events read for one picture set; the description says when the cap was reached.</summary>
    public const int MaxEvents = 200_000;

    private static readonly string[] NotFlagging = [ReviewStatus.Dismissed, ReviewStatus.Suppressed];

    /// <summary>The pictures of the user a finding is about, with the finding's day as a timeline.</summary>
    public static async Task<UserPictures?> ForFindingAsync(
        LiveDbContext db, LiveDirectory directory, PeerGroupSizes groups, string findingId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var f = await db.Findings.AsNoTracking().Where(x => x.Id == findingId)
            .Select(x => new { x.UserId, x.UserName, x.Pseudonym, x.WindowStartTicks, x.WindowEndTicks, x.Json }).FirstOrDefaultAsync(cancellationToken);
        if (f is null)
        {
            return null;
        }

        var (volume, hours, zone, usual) = await UserAsync(db, directory, groups, f.UserId, f.Pseudonym, now, cancellationToken);
        var wanted = (FindingJson.ParseOrNull(f.Json)?.EventIds ?? []).ToHashSet(StringComparer.Ordinal);
        var day = LocalDay(f.WindowStartTicks, zone);
        var from = ActivityTimeline.LocalMidnight(day, zone).UtcTicks;
        var to = ActivityTimeline.LocalMidnight(day.AddDays(1), zone).UtcTicks;
        var events = await EventsAsync(db, [f.UserId], from, to, cancellationToken);
        var timeline = ActivityTimeline.Build("finding-day", f.Pseudonym, day, zone,
            [.. events.Select(e => new TimelineEvent(e.Timestamp, PseudonymousView.Text(e.Action, f.UserId, f.UserName, f.Pseudonym), e.Records, wanted.Contains(e.EventId)))]);
        return new UserPictures(volume, hours, timeline, usual);
    }

    /// <summary>The pictures of the user behind a pseudonym, or null when no finding names it.</summary>
    public static async Task<UserPictures?> ForUserAsync(
        LiveDbContext db, LiveDirectory directory, PeerGroupSizes groups, string pseudonym, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var userId = await db.Findings.AsNoTracking().Where(f => f.Pseudonym == pseudonym).Select(f => f.UserId).FirstOrDefaultAsync(cancellationToken);
        if (userId is null)
        {
            return null;
        }

        var (volume, hours, _, usual) = await UserAsync(db, directory, groups, userId, pseudonym, now, cancellationToken);
        return new UserPictures(volume, hours, null, usual);
    }

    private static async Task<(Picture Volume, Picture Hours, TimeZoneInfo Zone, (int From, int To)? Usual)> UserAsync(
        LiveDbContext db, LiveDirectory directory, PeerGroupSizes groups, string userId, string pseudonym, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var people = directory.Current;
        var user = people.Find(userId);
        var zone = user?.TimeZone ?? TimeZoneInfo.Utc;
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, zone).DateTime);
        var first = today.AddDays(-(Days - 1));
        var fromTicks = ActivityTimeline.LocalMidnight(first, zone).UtcTicks;
        var toTicks = ActivityTimeline.LocalMidnight(today.AddDays(1), zone).UtcTicks;

        var events = await EventsAsync(db, [userId], fromTicks, toTicks, cancellationToken);
        var findingStarts = await db.Findings.AsNoTracking().Where(f => f.UserId == userId && f.WindowEndTicks >= fromTicks)
            .Join(db.Reviews.AsNoTracking(), f => f.Id, r => r.FindingId, (f, r) => new { f.WindowStartTicks, r.Status })
            .Where(x => !NotFlagging.Contains(x.Status)).Select(x => x.WindowStartTicks).ToListAsync(cancellationToken);
        var flagged = findingStarts.Select(t => LocalDay(t, zone)).ToHashSet();
        var days = Daily(events, zone, first, Days, flagged);

        IReadOnlyList<double>? peerMedian = null;
        string? peerNote;
        if (user is null)
        {
            peerNote = "No peer median: the directory does not know this user's peer group.";
        }
        else if (!groups.MayName(user.PeerGroup))
        {
            peerNote = $"No peer median: the peer group has fewer than {groups.MinSize} people, so its median would describe individuals.";
        }
        else
        {
            var peers = people.Users.Where(u => u.UserId != userId && string.Equals(u.PeerGroup, user.PeerGroup, StringComparison.OrdinalIgnoreCase))
                .OrderBy(u => u.UserId, StringComparer.Ordinal).Take(MaxPeers).ToList();
            var peerEvents = peers.Count == 0 ? [] : await EventsAsync(db, [.. peers.Select(p => p.UserId)], fromTicks - TimeSpan.TicksPerDay, toTicks + TimeSpan.TicksPerDay, cancellationToken);
            peerMedian = PeerMedian(peerEvents, peers.Select(p => (p.UserId, p.TimeZone)).ToList(), first, Days);
            peerNote = null;
        }

        var volume = DailyVolumeChart.Build("daily-volume", pseudonym, days, peerMedian, peerNote);
        var ordinary = events.Where(e => !flagged.Contains(DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(e.Timestamp, zone).DateTime))).Select(e => e.Timestamp).ToList();
        var hours = HourOfWeekHeatMap.Build("hour-of-week", pseudonym, events.Select(e => e.Timestamp), zone, Days, ordinary);
        return (volume, hours, zone, HourOfWeekHeatMap.UsualHours(HourOfWeekHeatMap.Count(ordinary, zone)));
    }

    /// <summary>Records read or exported per local day, <paramref name="count"/> days from <paramref name="first"/>.</summary>
    public static List<DayVolume> Daily(IEnumerable<EventPoint> events, TimeZoneInfo zone, DateOnly first, int count, IReadOnlySet<DateOnly> flagged)
    {
        var totals = new double[count];
        foreach (var e in events)
        {
            var index = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(e.Timestamp, zone).DateTime).DayNumber - first.DayNumber;
            if (index >= 0 && index < count && ReadsData(e.Action))
            {
                totals[index] += e.Records;
            }
        }

        return [.. Enumerable.Range(0, count).Select(i => new DayVolume(first.AddDays(i), totals[i], flagged.Contains(first.AddDays(i))))];
    }

    /// <summary>Per day, the median over the peers of their records read or exported that day (each peer's own local day; 0 on a day without any).</summary>
    public static List<double> PeerMedian(IEnumerable<EventPoint> events, IReadOnlyList<(string UserId, TimeZoneInfo Zone)> peers, DateOnly first, int count)
    {
        var byUser = events.GroupBy(e => e.UserId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var perPeer = peers.Select(p => Daily(byUser.GetValueOrDefault(p.UserId) ?? [], p.Zone, first, count, new HashSet<DateOnly>())).ToList();
        return [.. Enumerable.Range(0, count).Select(i => perPeer.Count == 0 ? 0 : Percentiles.Of([.. perPeer.Select(p => p[i].Records).Order()], .5))];
    }

    private static bool ReadsData(string action) => AccessActions.TryParse(action, out var parsed) && AccessActions.ReadsData(parsed);

    private static DateOnly LocalDay(long utcTicks, TimeZoneInfo zone) =>
        DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(new DateTimeOffset(utcTicks, TimeSpan.Zero), zone).DateTime);

    private static async Task<List<EventPoint>> EventsAsync(LiveDbContext db, List<string> userIds, long fromTicks, long toTicks, CancellationToken cancellationToken)
    {
        var rows = await db.Events.AsNoTracking()
            .Where(e => userIds.Contains(e.UserId) && e.TimestampTicks >= fromTicks && e.TimestampTicks < toTicks)
            .OrderBy(e => e.TimestampTicks).ThenBy(e => e.Seq)
            .Select(e => new { e.UserId, e.TimestampTicks, e.Line, e.EventKey, e.ClientId })
            .Take(MaxEvents)
            .ToListAsync(cancellationToken);
        var points = new List<EventPoint>(rows.Count);
        foreach (var row in rows)
        {
            // The event id as the finding names it (see Evidence): the key without its sender's prefix.
            var id = row.EventKey.Length > row.ClientId.Length ? row.EventKey[(row.ClientId.Length + 1)..] : row.EventKey;
            using var json = JsonDocument.Parse(row.Line);
            var e = json.RootElement;
            var action = e.TryGetProperty("action", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() ?? "" : "";
            var records = e.TryGetProperty("record_count", out var c) && c.ValueKind == JsonValueKind.Number && c.TryGetInt64(out var n) ? n : 1;
            points.Add(new EventPoint(row.UserId, new DateTimeOffset(row.TimestampTicks, TimeSpan.Zero), action, records, id));
        }

        return points;
    }
}
