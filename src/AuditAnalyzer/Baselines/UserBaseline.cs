using System.Runtime.CompilerServices;

namespace CrmSecurity.AuditAnalyzer.Baselines;

/// <summary>
/// The per-day counters every user's baseline keeps, by index. A detector that needs a daily total of its own adds
/// one line here (index and stored name); the baseline, its history, the rolling sums and the stored form then carry
/// it without further change. Stored by name, so a baseline saved before a counter existed reads it as zero.
/// </summary>
internal static class DayCounters
{
    public const int Exported = 0;
    public const int Read = 1;
    public const int Decrypted = 2;
    public const int AdminBusinessRead = 3;

    /// <summary>Distinct records read today outside the user's book (see the snooping detector).</summary>
    public const int OutsideBook = 4;

    /// <summary>Distinct records read today, for sources that name records but not their owner or unit.</summary>
    public const int DistinctRecords = 5;

    /// <summary>Records shared or reassigned outside the user's unit or to new accounts (see the sharing detector).</summary>
    public const int SharedOutside = 6;

    /// <summary>Records deleted.</summary>
    public const int Deleted = 7;

    public const int Count = 8;

    /// <summary>The names the stored form uses; never rename one (a stored baseline finds its counters by these).</summary>
    public static readonly string[] Names = ["exported", "read", "decrypted", "admin_business_read", "outside_book", "distinct_records", "shared_outside", "deleted"];

    /// <summary>The index of a stored counter name, or -1 for one this build does not keep.</summary>
    public static int IndexOf(string name) => Array.IndexOf(Names, name);
}

/// <summary>One float per <see cref="DayCounters"/> entry, held inline so a day's totals stay one value without an array.</summary>
[InlineArray(DayCounters.Count)]
internal struct CounterValues
{
    private float _first;
}

/// <summary>What one day of a user's activity added up to. Days are the user's local calendar days.</summary>
internal struct DayTotals
{
    public int Day;

    /// <summary>The day's counters, indexed by <see cref="DayCounters"/>.</summary>
    public CounterValues Counters;

    public uint HoursMask;

    public float Exported { readonly get => Counters[DayCounters.Exported]; set => Counters[DayCounters.Exported] = value; }

    public float Read { readonly get => Counters[DayCounters.Read]; set => Counters[DayCounters.Read] = value; }

    public float Decrypted { readonly get => Counters[DayCounters.Decrypted]; set => Counters[DayCounters.Decrypted] = value; }

    public float AdminBusinessRead { readonly get => Counters[DayCounters.AdminBusinessRead]; set => Counters[DayCounters.AdminBusinessRead] = value; }

    /// <summary>A day that raised an alert: kept out of the recent baseline and of later rolling totals.</summary>
    public bool Tainted;

    public readonly bool Active => HoursMask != 0;
}

/// <summary>
/// Everything the analyzer remembers about one user, in fixed-size structures so memory grows with the
/// number of users, never with the number of events:
/// <list type="bullet">
/// <item>the last 30 local days as a ring (today included), used for rolling 7/30-day totals;</item>
/// <item>the last <c>history_days</c> active days older than that (per-day totals), the long-term baseline;</item>
/// <item>how often each of the 168 hours of the week was active, and active days per weekday;</item>
/// <item>the entity/action pairs the user has done, countries seen, and recent privilege grants.</item>
/// </list>
/// </summary>
internal sealed class UserBaseline
{
    public const int RecentDays = 30;

    public UserBaseline(string userId, int historyDays)
    {
        UserId = userId;
        History = new float[DayCounters.Count][];
        for (var i = 0; i < History.Length; i++)
        {
            History[i] = new float[historyDays];
        }
    }

    public string UserId { get; }

    public string PeerGroup { get; set; } = "";

    public int ActiveDays { get; set; }

    public int FirstDay { get; set; }

    public int LastActiveDay { get; set; }

    /// <summary>The local day events are being added to now (0 before the first event).</summary>
    public int CurrentDay { get; set; }

    public long LastEventTicks { get; set; }

    public int[] HourSlots { get; } = new int[168];

    public int[] ActiveDaysByWeekday { get; } = new int[7];

    public DayTotals[] Recent { get; } = new DayTotals[RecentDays];

    /// <summary>Long-term per-day history of every counter: <c>History[counter][slot]</c>, a ring of <c>history_days</c> active days.</summary>
    public float[][] History { get; }

    public float[] HistoryExported => History[DayCounters.Exported];

    public float[] HistoryRead => History[DayCounters.Read];

    public float[] HistoryDecrypted => History[DayCounters.Decrypted];

    public float[] HistoryAdminRead => History[DayCounters.AdminBusinessRead];

    public int HistoryCount { get; set; }

    public int HistoryNext { get; set; }

    public HashSet<string> EntityActions { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, int> Countries { get; } = new(StringComparer.Ordinal);

    /// <summary>Exports of sensitive entities per recent day: entity -> 30 totals indexed like <see cref="Recent"/>.</summary>
    public Dictionary<string, float[]> SensitiveExports { get; } = new(StringComparer.OrdinalIgnoreCase);

    public List<Grant> Grants { get; } = [];

    /// <summary>
    /// The business units whose records the user reads, with the number of days they did: their book. A unit read on
    /// enough days is the user's normal territory (see the snooping detector).
    /// </summary>
    public Dictionary<string, int> BookUnits { get; } = new(StringComparer.OrdinalIgnoreCase);

    public ref DayTotals Today => ref Recent[CurrentDay % RecentDays];

    /// <summary>The user's usual country: the one seen on most active days, when it is at least half of them.</summary>
    public string? HomeCountry
    {
        get
        {
            string? best = null;
            var bestCount = 0;
            var total = 0;
            foreach (var (country, count) in Countries)
            {
                total += count;
                if (count > bestCount)
                {
                    best = country;
                    bestCount = count;
                }
            }

            return bestCount * 2 >= total ? best : null;
        }
    }

    /// <summary>
    /// Moves the ring to <paramref name="day"/>. Days that fall out of the recent window go to the long-term
    /// history (unless tainted). Returns the previous current day's totals when it was closed (for peers).
    /// </summary>
    public DayTotals? OpenDay(int day)
    {
        if (day == CurrentDay)
        {
            return null;
        }

        DayTotals? closed = CurrentDay != 0 && Today.Active ? Today : null;
        if (closed is { } finished)
        {
            // The hour-of-week profile learns a day when it closes, so today's hours never make
            // themselves normal while they are being scored.
            var weekday = (int)DateOnly.FromDayNumber(finished.Day).DayOfWeek;
            ActiveDaysByWeekday[weekday]++;
            for (var h = 0; h < 24; h++)
            {
                if ((finished.HoursMask & (1u << h)) != 0)
                {
                    HourSlots[(weekday * 24) + h]++;
                }
            }
        }

        ref var slot = ref Recent[day % RecentDays];
        if (slot.Day != day)
        {
            // Every day that is overwritten is older than the recent window now. Days that raised an alert
            // join the long-term history too: held out for the 30 days of the recent window (so a repeat
            // within a month alerts again), then learnt, because what recurs month after month (campaigns,
            // period close) is the user's normal. Confirmed incidents are kept out by the review workflow.
            if (slot.Active)
            {
                PushHistory(slot);
            }

            slot = new DayTotals { Day = day };
            foreach (var totals in SensitiveExports.Values)
            {
                totals[day % RecentDays] = 0;
            }
        }

        if (day > CurrentDay)
        {
            CurrentDay = day;
        }

        return closed;
    }

    /// <summary>Marks an hour of the current day active; the day counts once, the hour profile learns it when the day closes.</summary>
    public void MarkActive(int localHour)
    {
        ref var today = ref Today;
        if (today.HoursMask == 0)
        {
            ActiveDays++;
            if (FirstDay == 0)
            {
                FirstDay = today.Day;
            }
        }

        today.HoursMask |= 1u << localHour;
        LastActiveDay = today.Day;
    }

    /// <summary>Daily values of the baseline days: history plus recent days before today, untainted and active.</summary>
    public int BaselineValues(Span<double> into, Func<DayTotals, float> recent, float[] history)
    {
        var n = 0;
        for (var i = 0; i < HistoryCount && n < into.Length; i++)
        {
            into[n++] = history[i];
        }

        foreach (var day in Recent)
        {
            if (day.Active && !day.Tainted && day.Day != CurrentDay && day.Day > CurrentDay - RecentDays && n < into.Length)
            {
                into[n++] = recent(day);
            }
        }

        return n;
    }

    /// <summary>
    /// Sum over the last <paramref name="days"/> local days (today included) and how many of them were active.
    /// Earlier days that already raised a volume finding (tainted) or that <paramref name="explained"/> says
    /// were group-wide are left out: they have been reported or explained once already.
    /// </summary>
    public (double Sum, int ActiveDays) RollingSum(int days, Func<DayTotals, float> value, Func<int, bool>? explained = null)
    {
        double sum = 0;
        var active = 0;
        foreach (var day in Recent)
        {
            if (day.Active && day.Day > CurrentDay - days && day.Day <= CurrentDay)
            {
                active++;
                if (day.Day != CurrentDay && (day.Tainted || (explained?.Invoke(day.Day) ?? false)))
                {
                    continue;
                }

                sum += value(day);
            }
        }

        return (sum, active);
    }

    /// <summary>The highest total of <paramref name="span"/> consecutive active days in the long-term history (0 if shorter).</summary>
    public double MaxHistoryRun(int span, float[] history) => MaxHistoryRun(span, history, float.PositiveInfinity);

    /// <summary>
    /// The highest total of <paramref name="span"/> consecutive history days, each day counted at most
    /// <paramref name="cap"/> (a spike of a day or two is not a habit of weeks).
    /// </summary>
    public double MaxHistoryRun(int span, float[] history, float cap)
    {
        if (span <= 0 || HistoryCount < span)
        {
            return 0;
        }

        var start = HistoryCount < history.Length ? 0 : HistoryNext;
        double window = 0, best = 0;
        for (var i = 0; i < HistoryCount; i++)
        {
            window += Math.Min(cap, history[(start + i) % history.Length]);
            if (i >= span)
            {
                window -= Math.Min(cap, history[(start + i - span) % history.Length]);
            }

            if (i >= span - 1 && window > best)
            {
                best = window;
            }
        }

        return best;
    }

    /// <summary>The <paramref name="rank"/>-th largest value of the history (1 = the largest), or +inf with fewer values.</summary>
    public float HistoryLargest(float[] history, int rank)
    {
        if (rank < 1 || HistoryCount < rank)
        {
            return float.PositiveInfinity;
        }

        Span<float> values = stackalloc float[HistoryCount];
        history.AsSpan(0, HistoryCount).CopyTo(values);
        values.Sort();
        return values[HistoryCount - rank];
    }

    public double SensitiveRollingSum(string entity, int days)
    {
        if (!SensitiveExports.TryGetValue(entity, out var totals))
        {
            return 0;
        }

        double sum = 0;
        foreach (var day in Recent)
        {
            if (day.Active && day.Day > CurrentDay - days && day.Day <= CurrentDay)
            {
                sum += totals[day.Day % RecentDays];
            }
        }

        return sum;
    }

    public void AddSensitiveExport(string entity, double records)
    {
        if (!SensitiveExports.TryGetValue(entity, out var totals))
        {
            totals = new float[RecentDays];
            SensitiveExports[entity] = totals;
        }

        totals[CurrentDay % RecentDays] += (float)records;
    }

    public void PruneGrants(long olderThanTicks) => Grants.RemoveAll(g => g.Ticks < olderThanTicks);

    /// <summary>
    /// Writes this baseline into a scorer snapshot exactly as it is in memory (the rings in their slots, so sums over them
    /// add in the same order after a restore). Unlike <see cref="Persistence.BaselineSerializer"/>, which adapts a stored
    /// baseline to another build's counters and history length, a snapshot is only read back by the same layout: the
    /// caller checks the counters and the history length and replays instead when they differ.
    /// </summary>
    public void WriteState(BinaryWriter w)
    {
        w.Write(PeerGroup);
        w.Write(ActiveDays);
        w.Write(FirstDay);
        w.Write(LastActiveDay);
        w.Write(CurrentDay);
        w.Write(LastEventTicks);
        foreach (var v in HourSlots)
        {
            w.Write(v);
        }

        foreach (var v in ActiveDaysByWeekday)
        {
            w.Write(v);
        }

        foreach (var d in Recent)
        {
            w.Write(d.Day);
            for (var c = 0; c < DayCounters.Count; c++)
            {
                w.Write(d.Counters[c]);
            }

            w.Write(d.HoursMask);
            w.Write(d.Tainted);
        }

        w.Write(HistoryCount);
        w.Write(HistoryNext);
        foreach (var counter in History)
        {
            for (var i = 0; i < HistoryCount; i++)
            {
                w.Write(counter[i]);
            }
        }

        WriteLearned(w);
        WriteBookUnits(w);
    }

    /// <summary>Reads a baseline written by <see cref="WriteState"/> with the same counters and history length.</summary>
    public static UserBaseline ReadState(BinaryReader r, string userId, int historyDays)
    {
        var b = new UserBaseline(userId, historyDays)
        {
            PeerGroup = r.ReadString(),
            ActiveDays = r.ReadInt32(),
            FirstDay = r.ReadInt32(),
            LastActiveDay = r.ReadInt32(),
            CurrentDay = r.ReadInt32(),
            LastEventTicks = r.ReadInt64(),
        };
        for (var i = 0; i < b.HourSlots.Length; i++)
        {
            b.HourSlots[i] = r.ReadInt32();
        }

        for (var i = 0; i < b.ActiveDaysByWeekday.Length; i++)
        {
            b.ActiveDaysByWeekday[i] = r.ReadInt32();
        }

        for (var i = 0; i < RecentDays; i++)
        {
            var day = new DayTotals { Day = r.ReadInt32() };
            for (var c = 0; c < DayCounters.Count; c++)
            {
                day.Counters[c] = r.ReadSingle();
            }

            day.HoursMask = r.ReadUInt32();
            day.Tainted = r.ReadBoolean();
            b.Recent[i] = day;
        }

        b.HistoryCount = r.ReadInt32();
        b.HistoryNext = r.ReadInt32();
        if (b.HistoryCount > historyDays || b.HistoryNext >= historyDays || b.HistoryCount < 0 || b.HistoryNext < 0)
        {
            throw new InvalidDataException($"The snapshot of '{userId}' holds {b.HistoryCount} history days; this policy keeps {historyDays}.");
        }

        foreach (var counter in b.History)
        {
            for (var i = 0; i < b.HistoryCount; i++)
            {
                counter[i] = r.ReadSingle();
            }
        }

        b.ReadLearned(r);
        b.ReadBookUnits(r);

        return b;
    }

    /// <summary>
    /// The learned sets (entity-action pairs, countries, recent sensitive exports, grants) in the order both the scorer
    /// snapshot (<see cref="WriteState"/>) and the baseline file (<c>BaselineSerializer</c>) keep them.
    /// </summary>
    internal void WriteLearned(BinaryWriter w)
    {
        w.Write(EntityActions.Count);
        foreach (var key in EntityActions)
        {
            w.Write(key);
        }

        w.Write(Countries.Count);
        foreach (var (country, count) in Countries)
        {
            w.Write(country);
            w.Write(count);
        }

        w.Write(SensitiveExports.Count);
        foreach (var (entity, totals) in SensitiveExports)
        {
            w.Write(entity);
            foreach (var v in totals)
            {
                w.Write(v);
            }
        }

        w.Write(Grants.Count);
        foreach (var g in Grants)
        {
            w.Write(g.Ticks);
            w.Write(g.Privilege);
            w.Write(g.GrantedBy);
            w.Write(g.EventId);
        }
    }

    /// <summary>Reads what <see cref="WriteLearned"/> wrote into this baseline.</summary>
    internal void ReadLearned(BinaryReader r)
    {
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            EntityActions.Add(r.ReadString());
        }

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            Countries[r.ReadString()] = r.ReadInt32();
        }

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            var entity = r.ReadString();
            var totals = new float[RecentDays];
            for (var k = 0; k < totals.Length; k++)
            {
                totals[k] = r.ReadSingle();
            }

            SensitiveExports[entity] = totals;
        }

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            Grants.Add(new Grant(r.ReadInt64(), r.ReadString(), r.ReadString(), r.ReadString()));
        }
    }

    /// <summary>The snooping detector's book (business units and the days they were worked in), after the learned sets.</summary>
    internal void WriteBookUnits(BinaryWriter w)
    {
        w.Write(BookUnits.Count);
        foreach (var (unit, days) in BookUnits)
        {
            w.Write(unit);
            w.Write(days);
        }
    }

    /// <summary>Reads what <see cref="WriteBookUnits"/> wrote into this baseline.</summary>
    internal void ReadBookUnits(BinaryReader r)
    {
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            BookUnits[r.ReadString()] = r.ReadInt32();
        }
    }

    private void PushHistory(DayTotals day)
    {
        for (var i = 0; i < DayCounters.Count; i++)
        {
            History[i][HistoryNext] = day.Counters[i];
        }

        HistoryNext = (HistoryNext + 1) % HistoryExported.Length;
        HistoryCount = Math.Min(HistoryCount + 1, HistoryExported.Length);
    }
}

/// <summary>A role or privilege given to a user (by an admin_change or assign event).</summary>
internal sealed record Grant(long Ticks, string Privilege, string GrantedBy, string EventId);
