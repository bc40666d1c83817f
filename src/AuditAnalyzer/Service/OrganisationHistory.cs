using CrmSecurity.AuditAnalyzer.Policy;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>
/// How much history the installation itself has (policy <c>organisation_learning_days</c>): the UTC day of the earliest
/// event its scorers have seen. The live scorers report it after every page they score; the review queue reads it to say
/// whether, and until when, the organisation is still learning. An instance that has scored nothing yet falls back to the
/// event time of the first event stored (by arrival), one indexed row.
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

    /// <summary>UTC day number of the first stored event by arrival (the primary key's order), or null before any event.</summary>
    public static async Task<int?> FirstArrivalDayAsync(LiveDbContext db, CancellationToken cancellationToken)
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
