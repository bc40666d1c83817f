using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// What the baselines say about a user for the current local day. Each part is computed on first use
/// that day and then kept, so a day that never exports never sorts export history, and each event costs a
/// few comparisons. Built from baselines that do not include today.
/// </summary>
internal sealed class DayProfile
{
    private readonly ScoringPolicy _policy;
    private UserBaseline _baseline;
    private PeerBaseline _peers;
    private RobustStats? _export;
    private RobustStats? _logExport;
    private RobustStats? _read;
    private RobustStats? _decrypt;
    private RobustStats? _adminRead;
    private double? _activeHours;
    private double? _ownExportThreshold;
    private double? _peerExportQuantile;
    private double? _decryptThreshold;
    private double? _adminReadThreshold;
    private double? _longTermExportMean;
    private RobustStats?[]? _counters;

    public DayProfile(UserBaseline baseline, PeerBaseline peers, ScoringPolicy policy, int day, int previousActive)
    {
        _policy = policy;
        _baseline = baseline;
        _peers = peers;
        Open(baseline, peers, day, previousActive);
    }

    /// <summary>
    /// Starts the profile of the user's next day in this object: every cached part is forgotten. The scorer keeps one
    /// profile per user instead of a new one a day, because each new one lived exactly a day (past the young
    /// generation) and was then garbage: with it a pass promoted 168 MiB out of gen0, without it 112 MiB (docs/benchmarks.md).
    /// </summary>
    public void Open(UserBaseline baseline, PeerBaseline peers, int day, int previousActive)
    {
        _baseline = baseline;
        _peers = peers;
        _export = _logExport = _read = _decrypt = _adminRead = null;
        _activeHours = _ownExportThreshold = _peerExportQuantile = _decryptThreshold = _adminReadThreshold = _longTermExportMean = null;
        if (_counters is not null)
        {
            Array.Clear(_counters);
        }

        Day = day;
        ActiveDaysBefore = baseline.Today.Active ? baseline.ActiveDays - 1 : baseline.ActiveDays;
        Learning = ActiveDaysBefore < _policy.LearningMinActiveDays;
        var gap = previousActive > 0 && day > previousActive ? day - previousActive : 0;
        DormantGapDays = gap >= _policy.Privilege.DormantDays && ActiveDaysBefore >= 5 ? gap : 0;
        TypicalGapDays = ActiveDaysBefore > 1 && baseline.FirstDay > 0
            ? Math.Max(1, (int)Math.Round((double)(previousActive - baseline.FirstDay) / Math.Max(1, ActiveDaysBefore - 1)))
            : 1;
    }

    /// <summary>
    /// The person moved to another peer group during the day (a directory change): what the profile has already
    /// computed stays for the rest of the day, what it computes from now on comes from the new group.
    /// </summary>
    public void MovePeers(PeerBaseline peers) => _peers = peers;

    private DayProfile(UserBaseline baseline, PeerBaseline peers, ScoringPolicy policy)
    {
        _policy = policy;
        _baseline = baseline;
        _peers = peers;
    }

    /// <summary>
    /// Writes the day's profile into a scorer snapshot, with what it has cached so far: a cached value was computed from
    /// the peers as they were at its first use, and recomputing it after a restore would judge the rest of the day differently.
    /// </summary>
    public void WriteState(BinaryWriter w)
    {
        w.Write(Day);
        w.Write(ActiveDaysBefore);
        w.Write(Learning);
        w.Write(DormantGapDays);
        w.Write(TypicalGapDays);
        WriteStats(w, _export);
        WriteStats(w, _logExport);
        WriteStats(w, _read);
        WriteStats(w, _decrypt);
        WriteStats(w, _adminRead);
        WriteNumber(w, _activeHours);
        WriteNumber(w, _ownExportThreshold);
        WriteNumber(w, _peerExportQuantile);
        WriteNumber(w, _decryptThreshold);
        WriteNumber(w, _adminReadThreshold);
        WriteNumber(w, _longTermExportMean);
        w.Write(_counters?.Length ?? -1);
        foreach (var counter in _counters ?? [])
        {
            WriteStats(w, counter);
        }
    }

    /// <summary>Reads a profile written by <see cref="WriteState"/> for the restored <paramref name="baseline"/> and <paramref name="peers"/>.</summary>
    public static DayProfile ReadState(BinaryReader r, UserBaseline baseline, PeerBaseline peers, ScoringPolicy policy)
    {
        var p = new DayProfile(baseline, peers, policy)
        {
            Day = r.ReadInt32(),
            ActiveDaysBefore = r.ReadInt32(),
            Learning = r.ReadBoolean(),
            DormantGapDays = r.ReadInt32(),
            TypicalGapDays = r.ReadInt32(),
        };
        p._export = ReadStats(r);
        p._logExport = ReadStats(r);
        p._read = ReadStats(r);
        p._decrypt = ReadStats(r);
        p._adminRead = ReadStats(r);
        p._activeHours = ReadNumber(r);
        p._ownExportThreshold = ReadNumber(r);
        p._peerExportQuantile = ReadNumber(r);
        p._decryptThreshold = ReadNumber(r);
        p._adminReadThreshold = ReadNumber(r);
        p._longTermExportMean = ReadNumber(r);
        var counters = r.ReadInt32();
        if (counters >= 0)
        {
            p._counters = new RobustStats?[counters];
            for (var i = 0; i < counters; i++)
            {
                p._counters[i] = ReadStats(r);
            }
        }

        return p;
    }

    private static void WriteNumber(BinaryWriter w, double? value)
    {
        w.Write(value.HasValue);
        w.Write(value ?? 0);
    }

    private static double? ReadNumber(BinaryReader r)
    {
        var has = r.ReadBoolean();
        var value = r.ReadDouble();
        return has ? value : null;
    }

    private static void WriteStats(BinaryWriter w, RobustStats? stats)
    {
        w.Write(stats.HasValue);
        if (stats is { } s)
        {
            w.Write(s.Count);
            w.Write(s.Median);
            w.Write(s.Mad);
            w.Write(s.Mean);
            w.Write(s.Max);
            w.Write(s.P90);
        }
    }

    private static RobustStats? ReadStats(BinaryReader r) =>
        r.ReadBoolean() ? new RobustStats(r.ReadInt32(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble()) : null;

    public int Day { get; private set; }

    public int ActiveDaysBefore { get; private set; }

    public bool Learning { get; private set; }

    /// <summary>Days since the previous active day when that gap is at least the dormancy limit; else 0.</summary>
    public int DormantGapDays { get; private set; }

    public int TypicalGapDays { get; private set; }

    public RobustStats Export => _export ?? ExportStats().Export;

    /// <summary>Median and MAD of the log of the days with exports.</summary>
    public RobustStats LogExport => _logExport ?? ExportStats().Log;

    public RobustStats Read => _read ??= Stats(d => d.Read, _baseline.HistoryRead);

    public RobustStats Decrypt => _decrypt ??= Stats(d => d.Decrypted, _baseline.HistoryDecrypted);

    public RobustStats AdminRead => _adminRead ??= Stats(d => d.AdminBusinessRead, _baseline.HistoryAdminRead);

    /// <summary>Robust statistics of any day counter (<see cref="DayCounters"/>) over the baseline days, computed once a day on first use.</summary>
    public RobustStats Counter(int counter)
    {
        _counters ??= new RobustStats?[DayCounters.Count];
        return _counters[counter] ??= CounterStats(counter);
    }

    // Apart from Counter: a lambda capturing the parameter there allocated its closure on every call, cached or not.
    private RobustStats CounterStats(int counter) => Stats(d => d.Counters[counter], _baseline.History[counter]);

    /// <summary>Mean exported per active day over history older than the recent window (for rolling totals).</summary>
    public double LongTermExportMean => _longTermExportMean ??= ComputeLongTermExportMean();

    private double ComputeLongTermExportMean()
    {
        double sum = 0;
        for (var i = 0; i < _baseline.HistoryCount; i++)
        {
            sum += _baseline.HistoryExported[i];
        }

        return _baseline.HistoryCount == 0 ? 0 : sum / _baseline.HistoryCount;
    }

    public int LongTermDays => _baseline.HistoryCount;

    /// <summary>
    /// Records exported in a day above which the day is unusual for this user; +inf in learning mode.
    /// Export volumes are heavy-tailed (roughly log-normal): the robust z is taken on the log of the days
    /// with exports, its spread floored at 0.5 (a factor of 1.6) so a very regular user is not flagged for
    /// a modest change. With fewer than 5 export days there is no spread to speak of, and only a day far
    /// beyond anything seen before counts.
    /// </summary>
    public double OwnExportThreshold => _ownExportThreshold ??= ComputeOwnExportThreshold();

    private double ComputeOwnExportThreshold()
    {
        var rules = _policy.BulkExport;
        if (Learning)
        {
            return double.PositiveInfinity;
        }

        var log = LogExport;
        return log.Count >= 5
            ? Math.Max(rules.MinRecordsPerDay, Math.Max(Math.Exp(log.Median + (rules.RobustZ * Math.Max(0.5, 1.4826 * log.Mad))), rules.OverHistoryMax * Export.Max))
            : Math.Max(rules.MinRecordsPerDay, 2 * rules.OverHistoryMax * Export.Max);
    }

    private bool EnoughPeers => _peers.PoolCount >= 50;

    /// <summary>The peer group's daily export quantile (policy <c>peer_quantile</c>), NaN when the group has too few member-days.</summary>
    public double PeerExportQuantile => _peerExportQuantile ??= EnoughPeers ? _peers.ExportQuantile(_policy.BulkExport.PeerQuantile) : double.NaN;

    public double PeerExportMean => EnoughPeers ? _peers.ExportMean : 0;

    public double PeerReadMedian => EnoughPeers ? _peers.ReadMedian : 0;

    public double DecryptThreshold => _decryptThreshold ??= ComputeDecryptThreshold();

    private double ComputeDecryptThreshold()
    {
        var privilege = _policy.Privilege;
        return Learning
            ? Math.Max(privilege.MassDecryptMinValues, 2 * (EnoughPeers ? _peers.DecryptQuantile(_policy.BulkExport.PeerQuantile) : 0))
            : Math.Max(privilege.MassDecryptMinValues, Math.Max(privilege.MassDecryptOverHistoryMax * Decrypt.Max, Decrypt.Median + (_policy.BulkExport.RobustZ * Decrypt.Sigma)));
    }

    public double AdminReadThreshold => _adminReadThreshold ??= ComputeAdminReadThreshold();

    private double ComputeAdminReadThreshold()
    {
        var privilege = _policy.Privilege;
        return Learning
            ? double.PositiveInfinity
            : Math.Max(privilege.AdminDataMinRecords, Math.Max(privilege.AdminDataOverHistoryMax * AdminRead.Max, AdminRead.Median + (_policy.BulkExport.RobustZ * AdminRead.Sigma)));
    }

    /// <summary>Hours with activity on a typical active day (hour-of-week slots over active days).</summary>
    public double ActiveHoursPerDay => _activeHours ??= _baseline.ActiveDaysByWeekday.Sum() == 0
        ? 8
        : (double)_baseline.HourSlots.Sum() / _baseline.ActiveDaysByWeekday.Sum();

    private RobustStats Stats(Func<DayTotals, float> recent, float[] history)
    {
        Span<double> values = stackalloc double[history.Length + UserBaseline.RecentDays];
        var count = _baseline.BaselineValues(values, recent, history);
        return RobustStats.Of(values[..count]);
    }

    /// <summary>
    /// Export days and their logs from one sort: the days with at least one record exported are the sorted
    /// tail, and the logarithm keeps their order, so the log sample needs no second sort.
    /// </summary>
    private (RobustStats Export, RobustStats Log) ExportStats()
    {
        Span<double> values = stackalloc double[_baseline.HistoryExported.Length + UserBaseline.RecentDays];
        var count = _baseline.BaselineValues(values, d => d.Exported, _baseline.HistoryExported);
        values = values[..count];
        values.Sort();
        _export = RobustStats.OfSorted(values);
        var first = 0;
        while (first < values.Length && values[first] < 1)
        {
            first++;
        }

        var logs = values[first..];
        var ordered = true;
        for (var i = 0; i < logs.Length; i++)
        {
            logs[i] = Math.Log(logs[i]);
            ordered &= i == 0 || logs[i] >= logs[i - 1];
        }

        if (!ordered)
        {
            logs.Sort(); // not expected (log is monotonic), but the statistics must not depend on it
        }

        _logExport = RobustStats.OfSorted(logs);
        return (_export.Value, _logExport.Value);
    }
}

/// <summary>The local time of an event in the user's time zone, and how rare that hour of the week is for them.</summary>
internal readonly record struct LocalTime(DateTime Local, int Day, int Hour, DayOfWeek Weekday)
{
    public static LocalTime Of(DateTimeOffset timestamp, TimeZoneInfo zone)
    {
        var local = TimeZoneInfo.ConvertTime(timestamp, zone).DateTime;
        return new LocalTime(local, DateOnly.FromDateTime(local).DayNumber, local.Hour, local.DayOfWeek);
    }
}

/// <summary>
/// How usual an hour of the week is for a user (or, in learning mode, for their peers). <see cref="HomeRare"/> is the
/// hour's rarity in the user's own time zone, which for a traveller differs from <see cref="Rare"/> (judged where they are).
/// </summary>
internal readonly record struct HourRarity(bool Rare, double Share, bool Travelling, string? TravelCountry, int Hour, DayOfWeek Weekday, bool FromPeers, bool HomeRare);

/// <summary>
/// Everything a detector may look at for one event: the event's user, their baselines, peers and directory row.
/// <see cref="FirstSeenEntityAction"/> says the user had never done <see cref="EntityAction"/> before this event.
/// </summary>
internal readonly record struct UserView(
    string? EntityAction,
    bool FirstSeenEntityAction,
    UserBaseline Baseline,
    PeerBaseline Peers,
    DirectoryUser? Directory,
    bool IsAdmin,
    DayProfile Profile,
    LocalTime Time,
    HourRarity Hour,
    double OddHourRecordsToday,
    IReadOnlyList<string> DayEvidence,
    IReadOnlyList<string> OddEvidence,
    SnoopingDay? Snooping = null,
    Whereabouts? Whereabouts = null);
