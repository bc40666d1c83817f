using System.Globalization;
using CrmSecurity.AuditAnalyzer.Policy;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>
/// How much history the installation itself has (policy <c>organisation_learning_days</c>): the UTC day of the earliest
/// event its scorers have seen. The live scorers report it after every page they score; the review queue reads it to say
/// whether, and until when, the organisation is still learning. An instance that has scored nothing yet falls back to the
/// first day written down in <c>analyzer_review_settings</c> (<see cref="SettingKey"/>, written once, before retention first
/// deletes events), and a database that has none yet to the event time of the first event stored (by arrival), one indexed row.
/// Without the written day, deleting old events would move the first day forward and the organisation would look new again.
/// </summary>
internal sealed class OrganisationHistory(ScoringPolicy policy)
{
    private int _firstDay = int.MaxValue;

    /// <summary>The earliest day any scorer of this instance has seen, or null.</summary>
    public int? KnownFirstDay
    {
        get
        {
            var day = Volatile.Read(ref _firstDay);
            return day == int.MaxValue ? null : day;
        }
    }

    /// <summary>A scorer's first day (UTC day number); the earliest one reported wins.</summary>
    public void Saw(int? day)
    {
        if (day is not { } d)
        {
            return;
        }

        var current = Volatile.Read(ref _firstDay);
        while (d < current)
        {
            var seen = Interlocked.CompareExchange(ref _firstDay, d, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    /// <summary>The setting that holds the organisation's first day (a UTC day number) once retention has written it.</summary>
    internal const string SettingKey = "organisation_first_day";

    /// <summary>
    /// UTC day number of the organisation's first event: the written-down day, or else that of the first stored event by
    /// arrival (the primary key's order); null before any event.
    /// </summary>
    public static async Task<int?> FirstArrivalDayAsync(LiveDbContext db, CancellationToken cancellationToken) =>
        await WrittenFirstDayAsync(db, cancellationToken) ?? await FirstStoredDayAsync(db, cancellationToken);

    /// <summary>
    /// The same for a scorer, which reads events only through the ingestion log: the written-down day, or else the first
    /// event's day by the log's position (for the database log, the same row as <see cref="FirstArrivalDayAsync(LiveDbContext, CancellationToken)"/>).
    /// </summary>
    public static async Task<int?> FirstArrivalDayAsync(LiveDbContext db, EventLog.IEventLog log, CancellationToken cancellationToken) =>
        await WrittenFirstDayAsync(db, cancellationToken) ?? await log.FirstArrivalDayAsync(cancellationToken);

    /// <summary>
    /// Writes the first day down unless it is already: called before events are deleted, once per retention pass. Race-safe
    /// between instances: the key is unique, and on a conflict the day written first stays.
    /// </summary>
    public static async Task RememberFirstDayAsync(LiveDbContext db, CancellationToken cancellationToken)
    {
        if (await WrittenFirstDayAsync(db, cancellationToken) is not null || await FirstStoredDayAsync(db, cancellationToken) is not { } day)
        {
            return;
        }

        var row = new Review.ReviewSettingRow { Key = SettingKey, Value = day.ToString(CultureInfo.InvariantCulture) };
        db.ReviewSettings.Add(row);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            db.Entry(row).State = EntityState.Detached;
            if (await WrittenFirstDayAsync(db, cancellationToken) is null)
            {
                throw;
            }

            // Another instance wrote it first (the same day, from the same table).
        }

        db.Entry(row).State = EntityState.Detached;
    }

    private static async Task<int?> WrittenFirstDayAsync(LiveDbContext db, CancellationToken cancellationToken)
    {
        var value = await db.ReviewSettings.AsNoTracking().Where(s => s.Key == SettingKey).Select(s => s.Value).FirstOrDefaultAsync(cancellationToken);
        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var day) ? day : null;
    }

    private static async Task<int?> FirstStoredDayAsync(LiveDbContext db, CancellationToken cancellationToken)
    {
        var ticks = await db.Events.AsNoTracking().OrderBy(e => e.Seq).Select(e => (long?)e.TimestampTicks).FirstOrDefaultAsync(cancellationToken);
        return ticks is { } t ? (int)(t / TimeSpan.TicksPerDay) : null;
    }

    /// <summary>The learning period as of <paramref name="today"/>, or null when it is over, switched off, or nothing has arrived yet.</summary>
    public async Task<LearningPeriod?> LearningAsync(LiveDbContext db, DateOnly today, CancellationToken cancellationToken)
    {
        if (policy.OrganisationLearningDays <= 0 || (KnownFirstDay ?? await FirstArrivalDayAsync(db, cancellationToken)) is not { } first)
        {
            return null;
        }

        var ends = DateOnly.FromDayNumber(first + policy.OrganisationLearningDays);
        return today < ends ? new LearningPeriod(DateOnly.FromDayNumber(first), ends, Math.Max(0, today.DayNumber - first), policy.OrganisationLearningDays) : null;
    }
}

/// <summary>A new installation's learning period: from the first event's day; history-judged reasons speak from <see cref="Ends"/>.</summary>
internal sealed record LearningPeriod(DateOnly Started, DateOnly Ends, int DaysBehind, int DaysNeeded);
