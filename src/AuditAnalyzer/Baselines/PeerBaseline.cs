namespace CrmSecurity.AuditAnalyzer.Baselines;

/// <summary>
/// What a peer group (same department and primary role) does: a pooled sample of recent member-days
/// (a ring of the last 2,048 closed member-days) for volume quantiles, the group's hour-of-week
/// profile, and how many members have ever done each entity/action.
/// </summary>
internal sealed class PeerBaseline(string group)
{
    public const int PoolSize = 2048;

    private double _exportQuantileAt = -1;
    private double _exportQuantile;
    private double _decryptQuantile;
    private double _readMedian;
    private double _exportMean;
    private int _quantileVersion = -1;
    private int _version;
    private double[]? _buffer;

    public string Group { get; } = group;

    public HashSet<string> Members { get; } = new(StringComparer.Ordinal);

    public float[] PoolExported { get; } = new float[PoolSize];

    public float[] PoolRead { get; } = new float[PoolSize];

    public float[] PoolDecrypted { get; } = new float[PoolSize];

    public int PoolCount { get; set; }

    public int PoolNext { get; set; }

    public long[] HourSlots { get; } = new long[168];

    public long[] ActiveDaysByWeekday { get; } = new long[7];

    public Dictionary<string, int> EntityActionMembers { get; } = new(StringComparer.Ordinal);

    /// <summary>Members whose exports were unusual for themselves, per local day (runtime only, last few days).</summary>
    private readonly Dictionary<int, HashSet<string>> _unusual = [];

    /// <summary>Members who touched data at hours rare for them, per local day (runtime only, last few days).</summary>
    private readonly Dictionary<int, HashSet<string>> _oddHours = [];
    private readonly Dictionary<int, int> _activeByDay = [];

    public void MarkActiveDay(int day)
    {
        _activeByDay[day] = _activeByDay.GetValueOrDefault(day) + 1;
        if (_activeByDay.Count > 40)
        {
            foreach (var old in _activeByDay.Keys.Where(d => d < day - 35).ToList())
            {
                _activeByDay.Remove(old);
                _unusual.Remove(old);
                _oddHours.Remove(old);
            }
        }
    }

    public void MarkUnusual(int day, string userId) => Mark(_unusual, day, userId);

    /// <summary>Notes that a member touched data at an hour rare for them on <paramref name="day"/>.</summary>
    public void MarkOddHours(int day, string userId) => Mark(_oddHours, day, userId);

    private static void Mark(Dictionary<int, HashSet<string>> marks, int day, string userId)
    {
        if (!marks.TryGetValue(day, out var users))
        {
            users = new HashSet<string>(StringComparer.Ordinal);
            marks[day] = users;
        }

        users.Add(userId);
    }

    /// <summary>How many members had unusual exports on <paramref name="day"/>, out of the members active that day.</summary>
    public (int Unusual, int Active) Synchrony(int day) => (_unusual.GetValueOrDefault(day)?.Count ?? 0, _activeByDay.GetValueOrDefault(day));

    /// <summary>
    /// A group-wide export day (a campaign, a period close): at least three members, and a quarter of the
    /// members active that day, exported unusually much for themselves. Kept for the last 35 days.
    /// </summary>
    public bool IsGroupWide(int day)
    {
        var (unusual, active) = Synchrony(day);
        return unusual >= 3 && unusual >= 0.25 * Math.Max(1, active);
    }

    /// <summary>How many members touched data at hours rare for them on <paramref name="day"/>, out of the members active that day.</summary>
    public (int Odd, int Active) OddHoursSynchrony(int day) => (_oddHours.GetValueOrDefault(day)?.Count ?? 0, _activeByDay.GetValueOrDefault(day));

    /// <summary>
    /// A group-wide late day (an incident that kept a support team at work into the evening): at least three members, and
    /// a tenth of the members active that day, touched data at hours rare for each of them. On an ordinary day a few in a
    /// hundred do (a long day now and then); the tenth is well above that and well below the half of a team kept late.
    /// </summary>
    public bool IsGroupWideOddHours(int day)
    {
        var (odd, active) = OddHoursSynchrony(day);
        return odd >= 3 && odd >= 0.1 * Math.Max(1, active);
    }

    public void AddMemberDay(in DayTotals day)
    {
        PoolExported[PoolNext] = day.Exported;
        PoolRead[PoolNext] = day.Read;
        PoolDecrypted[PoolNext] = day.Decrypted;
        PoolNext = (PoolNext + 1) % PoolSize;
        PoolCount = Math.Min(PoolCount + 1, PoolSize);
        _version++;
    }

    /// <summary>Share of members who have ever done <paramref name="entityAction"/> (0 when the group is empty).</summary>
    public double MemberShare(string entityAction) =>
        Members.Count == 0 ? 0 : (double)EntityActionMembers.GetValueOrDefault(entityAction) / Members.Count;

    public double ExportQuantile(double q)
    {
        Refresh(q);
        return _exportQuantile;
    }

    public double DecryptQuantile(double q)
    {
        Refresh(q);
        return _decryptQuantile;
    }

    public double ReadMedian
    {
        get
        {
            Refresh(_exportQuantileAt < 0 ? 0.99 : _exportQuantileAt);
            return _readMedian;
        }
    }

    public double ExportMean
    {
        get
        {
            Refresh(_exportQuantileAt < 0 ? 0.99 : _exportQuantileAt);
            return _exportMean;
        }
    }

    /// <summary>
    /// Writes the group's state into a scorer snapshot: the stored layout of <see cref="Persistence.BaselineSerializer"/>
    /// plus what only a running scorer keeps (the last days' unusual and late members, and the cached quantiles with the
    /// version they were computed at, which are reused for up to 256 member-days and so change later scores).
    /// </summary>
    public void WriteState(BinaryWriter w)
    {
        var bytes = Persistence.BaselineSerializer.Write(this);
        w.Write(bytes.Length);
        w.Write(bytes);
        w.Write(_exportQuantileAt);
        w.Write(_exportQuantile);
        w.Write(_decryptQuantile);
        w.Write(_readMedian);
        w.Write(_exportMean);
        w.Write(_quantileVersion);
        w.Write(_version);
        WriteMarks(w, _unusual);
        WriteMarks(w, _oddHours);
        w.Write(_activeByDay.Count);
        foreach (var (day, count) in _activeByDay)
        {
            w.Write(day);
            w.Write(count);
        }
    }

    /// <summary>Reads a group written by <see cref="WriteState"/>.</summary>
    public static PeerBaseline ReadState(BinaryReader r, string group)
    {
        var p = Persistence.BaselineSerializer.ReadPeer(group, r.ReadBytes(r.ReadInt32()));
        p._exportQuantileAt = r.ReadDouble();
        p._exportQuantile = r.ReadDouble();
        p._decryptQuantile = r.ReadDouble();
        p._readMedian = r.ReadDouble();
        p._exportMean = r.ReadDouble();
        p._quantileVersion = r.ReadInt32();
        p._version = r.ReadInt32();
        ReadMarks(r, p._unusual);
        ReadMarks(r, p._oddHours);
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            p._activeByDay[r.ReadInt32()] = r.ReadInt32();
        }

        return p;
    }

    private static void WriteMarks(BinaryWriter w, Dictionary<int, HashSet<string>> marks)
    {
        w.Write(marks.Count);
        foreach (var (day, users) in marks)
        {
            w.Write(day);
            w.Write(users.Count);
            foreach (var user in users)
            {
                w.Write(user);
            }
        }
    }

    private static void ReadMarks(BinaryReader r, Dictionary<int, HashSet<string>> marks)
    {
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            var day = r.ReadInt32();
            var users = new HashSet<string>(StringComparer.Ordinal);
            for (var k = r.ReadInt32(); k > 0; k--)
            {
                users.Add(r.ReadString());
            }

            marks[day] = users;
        }
    }

    private void Refresh(double q)
    {
        // Recomputed at most once per 256 new member-days: quantiles of a 2,048 sample barely move in between.
        if (_quantileVersion >= 0 && _exportQuantileAt == q && _version - _quantileVersion < 256)
        {
            return;
        }

        _quantileVersion = _version;
        _exportQuantileAt = q;
        _buffer ??= new double[PoolSize];
        var buffer = _buffer;
        _exportQuantile = Quantile(PoolExported, buffer, q, out _exportMean);
        _decryptQuantile = Quantile(PoolDecrypted, buffer, q, out _);
        _readMedian = Quantile(PoolRead, buffer, 0.5, out _);
    }

    private double Quantile(float[] pool, double[] buffer, double q, out double mean)
    {
        double sum = 0;
        for (var i = 0; i < PoolCount; i++)
        {
            buffer[i] = pool[i];
            sum += pool[i];
        }

        mean = PoolCount == 0 ? 0 : sum / PoolCount;
        // Selection instead of a full sort: the same quantile, in linear time (three of these per refresh).
        return RobustStats.QuantileOfUnsorted(buffer.AsSpan(0, PoolCount), q);
    }
}

/// <summary>All baselines of a run: users and peer groups, and where the previous run stopped.</summary>
internal sealed class BaselineSet(int historyDays)
{
    public int HistoryDays { get; } = historyDays;

    public Dictionary<string, UserBaseline> Users { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, PeerBaseline> Peers { get; } = new(StringComparer.Ordinal);

    /// <summary>Timestamp of the last event scored by the previous run; later runs skip events up to it.</summary>
    public DateTimeOffset? Watermark { get; set; }

    /// <summary>UTC day (day number) of the first event this installation's analyzer ever scored: where its own history starts.</summary>
    public int? OrganisationFirstDay { get; set; }

    public UserBaseline User(string userId)
    {
        if (!Users.TryGetValue(userId, out var baseline))
        {
            baseline = new UserBaseline(userId, HistoryDays);
            Users[userId] = baseline;
        }

        return baseline;
    }

    public PeerBaseline Peer(string group)
    {
        if (!Peers.TryGetValue(group, out var peers))
        {
            peers = new PeerBaseline(group);
            Peers[group] = peers;
        }

        return peers;
    }
}
