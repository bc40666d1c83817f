using System.Globalization;
using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Scoring;

/// <summary>Builder of a <see cref="Scorer"/>: the policy, the directory and the baselines to continue from.</summary>
internal sealed class ScoringOptions
{
    public ScoringPolicy Policy { get; set; } = ScoringPolicy.Default();

    public UserDirectory Directory { get; set; } = UserDirectory.Empty;

    public BaselineSet? Baselines { get; set; }

    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    public Scorer Build() => new(Policy, Directory, Baselines ?? new BaselineSet(Policy.HistoryDays), TimeProvider);
}

/// <summary>
/// The incremental scoring engine: events in (in timestamp order), findings out; its only state is the
/// baselines and the findings still open for correlation. The same object scores a file or a live stream.
/// Not thread-safe: one scorer per partition of users.
/// </summary>
internal sealed class Scorer
{
    private readonly ScoringPolicy _policy;
    private UserDirectory _directory;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, UserContext> _users = new(StringComparer.Ordinal);
    private readonly IdentityCache<UserContext> _usersByIdentity = new(4096);
    private readonly EntityActionKeys _keys = new();
    private readonly PriorityQueue<Incident, long> _closing = new();
    private readonly List<Signal> _signals = [];

    // An array, not the catalogue's IReadOnlyList: a foreach over the interface allocated an enumerator per event.
    private static readonly IDetector[] Detectors = [.. DetectorCatalog.All];
    private readonly Dictionary<string, List<(DateTimeOffset At, double Score, string Reason)>> _history = new(StringComparer.Ordinal);
    private long _lastTicks = long.MinValue;

    internal Scorer(ScoringPolicy policy, UserDirectory directory, BaselineSet baselines, TimeProvider time)
    {
        _policy = policy;
        _directory = directory;
        Baselines = baselines;
        _time = time;
    }

    public BaselineSet Baselines { get; }

    public ScoringPolicy Policy => _policy;

    /// <summary>The directory the scorer judges by (the last one given to <see cref="Rebind"/>).</summary>
    public UserDirectory Directory => _directory;

    public long EventsScored { get; private set; }

    public int UsersNotInDirectory { get; private set; }

    public int FindingsWritten { get; private set; }

    /// <summary>Last event time scored: the watermark a later run continues from.</summary>
    public DateTimeOffset? LastEventTime => _lastTicks == long.MinValue ? null : new DateTimeOffset(_lastTicks, TimeSpan.Zero);

    /// <summary>Scores one event. Findings whose correlation window has passed are appended to <paramref name="closed"/>.</summary>
    public void Score(AccessEvent e, List<Finding> closed)
    {
        AdvanceTo(e.UtcTicks, closed);
        EventsScored++;

        var user = Context(e.UserId);
        var time = user.LocalTimeOf(e.Timestamp);
        if (time.Day != user.Baseline.CurrentDay || user.Profile is null)
        {
            OpenDay(user, time.Day);
        }

        var hour = Rarity(user, e, time);
        Accumulate(user, e, hour);

        if (e.Action == AccessAction.Export && user.Baseline.Today.Exported > user.Profile!.OwnExportThreshold)
        {
            user.Peers.MarkUnusual(time.Day, user.Baseline.UserId);
        }

        var key = _keys.Of(e);
        var firstSeen = key.Name is { } name && (key.Id >= 0 ? !user.HasDone(key.Id) : !user.Baseline.EntityActions.Contains(name));
        var view = new UserView(key.Name, firstSeen, user.Baseline, user.Peers, user.Directory, user.IsAdmin, user.Profile!, time, hour,
            user.OddRecordsToday, user.DayEvidence, user.OddEvidence, user.Snooping, user.Whereabouts);
        _signals.Clear();
        foreach (var detector in Detectors)
        {
            detector.Evaluate(e, view, _policy, _signals);
        }

        var organisationLearning = OrganisationLearning(e);
        foreach (var signal in _signals)
        {
            if (organisationLearning && !ReasonCodes.WithoutHistory.Contains(signal.Reason.Code))
            {
                SignalsHeldBack++;
                continue;
            }

            Attach(user, signal, closed);
        }

        Learn(user, e, time, key);
    }

    /// <summary>
    /// Judges from now on by <paramref name="next"/>, a newer directory, and returns how many of the people this scorer
    /// knows it changed. What they did stays learnt as it was: a changed person's next events are judged under their new
    /// time zone, unit, roles and dates; if their peer group changed they count as its member from now on (their past
    /// days stay in the old group's pooled sample, which is what that group did then); and their profile's caches that
    /// hang on the old data (local-time offset, hour rarity, hour profile) are refilled. Nothing is replayed, and the
    /// people the change did not touch keep every bit of their state. A scorer restored from a snapshot made under an
    /// older directory ends in the same state (<see cref="ReadState"/> applies the same move to the people whose data
    /// differs), so a takeover and a scorer that saw the change live judge the following events alike.
    /// </summary>
    public int Rebind(UserDirectory next)
    {
        if (ReferenceEquals(next, _directory))
        {
            return 0;
        }

        _directory = next;
        var changed = 0;
        foreach (var (userId, user) in _users)
        {
            var row = next.Find(userId);
            if (DirectoryUser.ScoringDigest(row) == DirectoryUser.ScoringDigest(user.Directory))
            {
                user.KeepRow(row); // the same data in the new directory's object: the old one can go
                continue;
            }

            Move(user, row, user.Peers);
            changed++;
        }

        return changed;
    }

    /// <summary>Gives <paramref name="user"/> their new directory row, moving their membership from <paramref name="from"/> to the row's peer group.</summary>
    private void Move(UserContext user, DirectoryUser? row, PeerBaseline from)
    {
        var group = row?.PeerGroup ?? "(not in directory)";
        var to = Baselines.Peer(group);
        user.Baseline.PeerGroup = group;
        if (!ReferenceEquals(from, to) && from.Members.Remove(user.Baseline.UserId))
        {
            // "How many members have done this" counts each member once, in the group they belong to now.
            to.Members.Add(user.Baseline.UserId);
            foreach (var done in user.Baseline.EntityActions)
            {
                if (from.EntityActionMembers.TryGetValue(done, out var count))
                {
                    if (count <= 1)
                    {
                        from.EntityActionMembers.Remove(done);
                    }
                    else
                    {
                        from.EntityActionMembers[done] = count - 1;
                    }
                }

                to.EntityActionMembers[done] = to.EntityActionMembers.GetValueOrDefault(done) + 1;
            }
        }

        user.Rebind(row, to, row is not null && row.Roles.Any(_policy.AdminRoles.Contains));
    }

    /// <summary>Closes findings whose window ended before <paramref name="ticks"/> (a live stream calls this on a timer).</summary>
    public void AdvanceTo(long ticks, List<Finding> closed)
    {
        if (ticks > _lastTicks)
        {
            _lastTicks = ticks;
        }

        while (_closing.TryPeek(out var incident, out var due) && due <= ticks)
        {
            _closing.Dequeue();
            Close(incident, closed);
        }
    }

    /// <summary>
    /// Findings still open (their correlation window has not passed), as they stand now, for a live service that
    /// shows a finding within seconds of its evidence and replaces it as the finding grows (same id).
    /// </summary>
    public void OpenFindings(List<Finding> open)
    {
        foreach (var (incident, _) in _closing.UnorderedItems)
        {
            if (incident.Closed)
            {
                continue;
            }

            var finding = incident.ToFinding(_policy, Synchronised(incident));
            if (finding.Score >= _policy.MinFindingScore)
            {
                open.Add(finding);
            }
        }
    }

    /// <summary>End of input: closes every open finding.</summary>
    public void Complete(List<Finding> closed)
    {
        while (_closing.TryDequeue(out var incident, out _))
        {
            Close(incident, closed);
        }
    }

    /// <summary>Per-user risk roll-up as of <paramref name="asOf"/>: the last 30 days of findings, decayed with a 7-day half-life.</summary>
    public IReadOnlyList<UserRisk> Risks(DateTimeOffset asOf)
    {
        var risks = new List<UserRisk>();
        foreach (var (userId, findings) in _history)
        {
            double remaining = 1;
            var count = 0;
            (DateTimeOffset At, double Score, string Reason) top = default;
            foreach (var finding in findings)
            {
                var age = (asOf - finding.At).TotalDays;
                if (age > 30 || age < -1)
                {
                    continue;
                }

                count++;
                remaining *= 1 - (finding.Score / 100 * Math.Pow(0.5, Math.Max(0, age) / 7));
                if (finding.Score > top.Score)
                {
                    top = finding;
                }
            }

            if (count > 0)
            {
                risks.Add(new UserRisk(userId, _directory.Find(userId)?.UserName, Math.Round(100 * (1 - remaining), 1), count, top.Score, top.Reason ?? ""));
            }
        }

        return risks.OrderByDescending(r => r.Risk).ToList();
    }

    /// <summary>Signals not raised because the organisation was still learning (<see cref="ScoringPolicy.OrganisationLearningDays"/>).</summary>
    public long SignalsHeldBack { get; private set; }

    /// <summary>The first day on which reasons that judge against history speak; null before any event or with the gate off.</summary>
    public DateOnly? OrganisationLearningEnds =>
        _policy.OrganisationLearningDays > 0 && Baselines.OrganisationFirstDay is { } first ? DateOnly.FromDayNumber(first + _policy.OrganisationLearningDays) : null;

    /// <summary>
    /// Whether the organisation has too little history of its own at this event's time (UTC days since the first event the
    /// installation scored): on a new installation every user and peer group is new, so rarity means nothing yet.
    /// </summary>
    private bool OrganisationLearning(AccessEvent e)
    {
        var day = (int)(e.UtcTicks / TimeSpan.TicksPerDay); // UTC day number, as DateOnly.DayNumber counts
        // An event older than the first day known (history sent after the first live events) makes the organisation older.
        if (Baselines.OrganisationFirstDay is not { } first || day < first)
        {
            Baselines.OrganisationFirstDay = first = day;
        }

        return day - first < _policy.OrganisationLearningDays;
    }

    /// <summary>Users seen so far (this run or before) whose own history is still too short to trust.</summary>
    public int UsersInLearningMode => Baselines.Users.Values.Count(b => b.ActiveDays > 0 && b.ActiveDays < _policy.LearningMinActiveDays);

    /// <summary>
    /// Writes everything this scorer holds into a snapshot (<c>Service/Snapshots</c>): counters, peer groups, users'
    /// baselines and their day so far, the findings still open and the recent findings behind <see cref="Risks"/>. A
    /// scorer built with the same policy and directory that reads it with <see cref="ReadState"/> scores the following
    /// events exactly as this one would have. Caches that change no result (identity caches, the time zone offset, the
    /// ids of entity/action pairs) are left out and rebuilt.
    /// </summary>
    public void WriteState(BinaryWriter w)
    {
        w.Write(_lastTicks);
        w.Write(EventsScored);
        w.Write(UsersNotInDirectory);
        w.Write(FindingsWritten);
        w.Write(SignalsHeldBack);
        w.Write(Baselines.OrganisationFirstDay.HasValue);
        w.Write(Baselines.OrganisationFirstDay ?? 0);

        w.Write(Baselines.Peers.Count);
        foreach (var (group, peers) in Baselines.Peers)
        {
            w.Write(group);
            peers.WriteState(w);
        }

        w.Write(Baselines.Users.Count);
        foreach (var (userId, baseline) in Baselines.Users)
        {
            w.Write(userId);
            baseline.WriteState(w);
        }

        w.Write(_users.Count);
        foreach (var (userId, user) in _users)
        {
            w.Write(userId);
            w.Write(DirectoryUser.ScoringDigest(user.Directory)); // the data judged by, so a restore under a newer directory moves whom it changed
            user.WriteState(w);
        }

        // The queue's own array order, so the restored heap is the same heap (ties close in the same order).
        w.Write(_closing.Count);
        foreach (var (incident, due) in _closing.UnorderedItems)
        {
            w.Write(due);
            incident.WriteState(w);
        }

        w.Write(_history.Count);
        foreach (var (userId, findings) in _history)
        {
            w.Write(userId);
            w.Write(findings.Count);
            foreach (var (at, score, reason) in findings)
            {
                WriteTime(w, at);
                w.Write(score);
                w.Write(reason);
            }
        }
    }

    /// <summary>Reads a snapshot written by <see cref="WriteState"/> into this scorer, which must not have scored anything yet.</summary>
    public void ReadState(BinaryReader r)
    {
        if (EventsScored != 0 || _users.Count != 0)
        {
            throw new InvalidOperationException("A snapshot is read into a new scorer only.");
        }

        _lastTicks = r.ReadInt64();
        EventsScored = r.ReadInt64();
        var notInDirectory = r.ReadInt32();
        FindingsWritten = r.ReadInt32();
        SignalsHeldBack = r.ReadInt64();
        var hasFirstDay = r.ReadBoolean();
        var firstDay = r.ReadInt32();
        Baselines.OrganisationFirstDay = hasFirstDay ? firstDay : null;

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            var group = r.ReadString();
            Baselines.Peers[group] = PeerBaseline.ReadState(r, group);
        }

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            var userId = r.ReadString();
            Baselines.Users[userId] = UserBaseline.ReadState(r, userId, Baselines.HistoryDays);
        }

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            // Made the way a first event makes it (directory row, peer group, admin roles), then given its day so far.
            var userId = r.ReadString();
            var judgedBy = r.ReadUInt64();
            var before = Baselines.Users.TryGetValue(userId, out var learnt) ? learnt.PeerGroup : null;
            var user = Context(userId);
            user.ReadState(r, _policy);
            if (judgedBy != DirectoryUser.ScoringDigest(user.Directory))
            {
                // The directory changed since the snapshot: the same move Rebind makes for a scorer that saw it live.
                Move(user, user.Directory, before is not null && Baselines.Peers.TryGetValue(before, out var old) ? old : user.Peers);
            }
        }

        UsersNotInDirectory = notInDirectory;
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            var due = r.ReadInt64();
            var incident = Incident.ReadState(r, _users);
            _closing.Enqueue(incident, due);
        }

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            var userId = r.ReadString();
            var findings = new List<(DateTimeOffset At, double Score, string Reason)>();
            for (var k = r.ReadInt32(); k > 0; k--)
            {
                findings.Add((ReadTime(r), r.ReadDouble(), r.ReadString()));
            }

            _history[userId] = findings;
        }
    }

    private static void WriteTime(BinaryWriter w, DateTimeOffset time)
    {
        w.Write(time.UtcTicks);
        w.Write((short)time.Offset.TotalMinutes);
    }

    private static DateTimeOffset ReadTime(BinaryReader r)
    {
        var ticks = r.ReadInt64();
        var offset = TimeSpan.FromMinutes(r.ReadInt16());
        return new DateTimeOffset(ticks + offset.Ticks, offset);
    }

    private static void WriteText(BinaryWriter w, string? text)
    {
        w.Write(text is not null);
        w.Write(text ?? "");
    }

    private static string? ReadText(BinaryReader r)
    {
        var has = r.ReadBoolean();
        var text = r.ReadString();
        return has ? text : null;
    }

    private static void WriteList(BinaryWriter w, IReadOnlyCollection<string> values)
    {
        w.Write(values.Count);
        foreach (var value in values)
        {
            w.Write(value);
        }
    }

    private static void ReadList(BinaryReader r, ICollection<string> into)
    {
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            into.Add(r.ReadString());
        }
    }

    private UserContext Context(string userId)
    {
        if (_usersByIdentity.Find(userId) is { } known)
        {
            return known;
        }

        if (_users.TryGetValue(userId, out var user))
        {
            _usersByIdentity.Remember(userId, user);
            return user;
        }

        var directory = _directory.Find(userId);
        if (directory is null)
        {
            UsersNotInDirectory++;
        }

        var baseline = Baselines.User(userId);
        var group = directory?.PeerGroup ?? "(not in directory)";
        baseline.PeerGroup = group;
        var isAdmin = directory is not null && directory.Roles.Any(_policy.AdminRoles.Contains);
        user = new UserContext(baseline, Baselines.Peer(group), directory, isAdmin);
        foreach (var done in baseline.EntityActions)
        {
            if (_keys.Get(done).Id is var id and >= 0)
            {
                user.MarkDone(id);
            }
        }

        _users[userId] = user;
        if (_users.Count * 4 > _usersByIdentity.Size && _usersByIdentity.Size < 1 << 20)
        {
            _usersByIdentity.Resize(_users.Count * 8);
        }

        _usersByIdentity.Remember(userId, user);
        return user;
    }

    private void OpenDay(UserContext user, int day)
    {
        var b = user.Baseline;
        var previousActive = b.LastActiveDay;
        var closed = b.OpenDay(day);
        if (closed is { } finished)
        {
            // The day just closed joins the peer group's pooled sample and hour profile.
            user.Peers.AddMemberDay(finished);
            var weekday = (int)DateOnly.FromDayNumber(finished.Day).DayOfWeek;
            user.Peers.ActiveDaysByWeekday[weekday]++;
            for (var h = 0; h < 24; h++)
            {
                if ((finished.HoursMask & (1u << h)) != 0)
                {
                    user.Peers.HourSlots[(weekday * 24) + h]++;
                }
            }
        }

        user.Snooping?.Close(b);
        user.Profile = Profile(user, day, previousActive);
        user.Peers.MarkActiveDay(day);
        user.OddRecordsToday = 0;
        user.DayEvidence.Clear();
        user.OddEvidence.Clear();
        user.CountriesToday.Clear();
        user.RarityCacheSlot = -1;
        user.HoursFilled = false;
        user.HomeCountry = user.Baseline.HomeCountry;
        user.LastCountry = null;
    }

    private DayProfile Profile(UserContext user, int day, int previousActive)
    {
        if (user.Profile is { } profile)
        {
            profile.Open(user.Baseline, user.Peers, day, previousActive);
            return profile;
        }

        return new(user.Baseline, user.Peers, _policy, day, previousActive);
    }

    private HourRarity Rarity(UserContext user, AccessEvent e, LocalTime time)
    {
        var slot = ((int)time.Weekday * 24) + time.Hour;
        var travelling = e.Country is { } country && user.HomeCountry is { } home && !string.Equals(country, home, StringComparison.OrdinalIgnoreCase);
        if (!travelling && user.RarityCacheSlot == slot)
        {
            return user.RarityCache;
        }

        var rules = _policy.OddHours;
        var fromPeers = user.Profile!.Learning;
        // The profile changes only when a day closes, so it is built once per user-day, on first need.
        // In learning mode the profile is the peers': it grows during the day as other members' days close,
        // so it is refilled when the group has seen 10% more member-days than when it was filled.
        var peerDays = fromPeers ? user.Peers.ActiveDaysByWeekday.Sum() : 0;
        if (!user.HoursFilled || (fromPeers && peerDays > (1.1 * user.HoursPeerDays) + 1))
        {
            user.HoursPeerDays = peerDays;
            user.Hours ??= HourProfile.Of<int>(user.Baseline.HourSlots, user.Baseline.ActiveDaysByWeekday, rules.KernelHours);
            if (fromPeers)
            {
                user.Hours.Fill<long>(user.Peers.HourSlots, user.Peers.ActiveDaysByWeekday);
            }
            else
            {
                user.Hours.Fill<int>(user.Baseline.HourSlots, user.Baseline.ActiveDaysByWeekday);
            }

            user.HoursFilled = true;
        }

        var hours = user.Hours!;
        var share = hours.Share(time.Weekday, time.Hour);
        var rare = share < rules.MaxShare && (!fromPeers || peerDays >= 50);
        var result = new HourRarity(rare, share, false, null, time.Hour, time.Weekday, fromPeers, rare);
        if (rare && travelling && CountryTimeZones.Of(e.Country!) is { } zone)
        {
            // A traveller's hours are judged in the local time of where they are.
            var there = LocalTime.Of(e.Timestamp, zone);
            var thereShare = hours.Share(there.Weekday, there.Hour);
            result = new HourRarity(thereShare < rules.MaxShare, thereShare, true, e.Country, there.Hour, there.Weekday, fromPeers, rare);
        }

        if (!travelling)
        {
            user.RarityCacheSlot = slot;
            user.RarityCache = result;
        }

        return result;
    }

    private void Accumulate(UserContext user, AccessEvent e, HourRarity hour)
    {
        ref var today = ref user.Baseline.Today;
        if (!e.Succeeded)
        {
            return;
        }

        if (SnoopingDay.IsRecordRead(e))
        {
            (user.Snooping ??= new SnoopingDay()).Add(e, ref today, user.Baseline, user.Directory, _policy.Snooping);
        }

        var records = e.RecordCount;
        var evidence = false;
        if (SharingDetector.IsHandOver(e))
        {
            var principal = _directory.Find(e.TargetUser!);
            evidence = SharingDetector.Accumulate(e, ref today, user.Directory, principal, DateOnly.FromDayNumber(today.Day), _policy.Sharing);
        }
        else if (MassDeleteDetector.IsDelete(e))
        {
            today.Counters[DayCounters.Deleted] += records;
            evidence = true;
        }

        switch (e.Action)
        {
            case AccessAction.Export:
                today.Exported += records;
                today.Read += records;
                if (_policy.LimitFor(e.Entity) is { } limit)
                {
                    user.Baseline.AddSensitiveExport(limit.Entity, records);
                }

                evidence = true;
                break;
            case AccessAction.Decrypt:
                today.Decrypted += records * Math.Max(1, e.FieldCount);
                evidence = true;
                break;
            default:
                if (AccessActions.ReadsData(e.Action))
                {
                    today.Read += records;
                    evidence = records >= 100;
                }

                break;
        }

        if (user.IsAdmin && AccessActions.ReadsData(e.Action) && e.Entity is not null
            && (_policy.BusinessEntities.Count == 0 || _policy.BusinessEntities.Contains(e.Entity)))
        {
            today.AdminBusinessRead += records;
            evidence = true;
        }

        if (evidence)
        {
            AddEvidence(user.DayEvidence, e.EventId);
        }

        if (hour.Rare)
        {
            if (AccessActions.TouchesData(e.Action))
            {
                user.OddRecordsToday += records * (e.Action == AccessAction.Decrypt ? Math.Max(1, e.FieldCount) : 1);
                user.Peers.MarkOddHours(user.Baseline.CurrentDay, user.Baseline.UserId);
            }

            AddEvidence(user.OddEvidence, e.EventId);
        }
    }

    private static void AddEvidence(List<string> list, string id)
    {
        // Bounded: the first events of the day that matter, and then the latest ones.
        if (list.Count < 20)
        {
            list.Add(id);
        }
        else
        {
            list[10 + (list.Count % 10)] = id;
        }
    }

    private void Learn(UserContext user, AccessEvent e, LocalTime time, EntityActionKeys.Key entityAction)
    {
        var b = user.Baseline;
        if (e.Succeeded && e.Action != AccessAction.LoginFailed)
        {
            var wasActive = b.ActiveDays > 0;
            b.MarkActive(time.Hour);
            if (!wasActive)
            {
                user.Peers.Members.Add(b.UserId);
            }

            if (e.Country is { } country && !ReferenceEquals(country, user.LastCountry) && user.CountriesToday.Add(country))
            {
                b.Countries[country] = b.Countries.GetValueOrDefault(country) + 1;
                user.LastCountry = country;
            }

            // The bit set mirrors the string set for pairs with an id, so the string set is only touched the
            // first time a user does something.
            if (entityAction.Name is { } key && (entityAction.Id < 0 || user.MarkDone(entityAction.Id)) && b.EntityActions.Add(key))
            {
                user.Peers.EntityActionMembers[key] = user.Peers.EntityActionMembers.GetValueOrDefault(key) + 1;
            }
        }

        b.LastEventTicks = e.UtcTicks;
        if (e.Country is { } place && e.Succeeded && e.Action != AccessAction.LoginFailed)
        {
            (user.Whereabouts ??= new Whereabouts()).Saw(place, e.UtcTicks, e.EventId);
        }

        if (PrivilegeMisuseDetector.IsGrant(e, _policy.Privilege)
            && e.TargetUser is { } target && !string.Equals(target, e.UserId, StringComparison.Ordinal))
        {
            var grantee = Context(target).Baseline;
            grantee.PruneGrants(e.UtcTicks - _policy.Privilege.EscalationWindow.Ticks);
            grantee.Grants.Add(new Grant(e.UtcTicks, e.Privilege!, e.UserId, e.EventId));
        }
    }

    private void Attach(UserContext user, Signal signal, List<Finding> closed)
    {
        var incident = user.Open;
        if (incident is not null && signal.Time.UtcTicks >= incident.Start.UtcTicks + _policy.CorrelationWindow.Ticks)
        {
            Close(incident, closed);
            incident = null;
        }

        if (incident is null)
        {
            incident = new Incident(user, signal.Time, user.Profile!.Day);
            user.Open = incident;
            _closing.Enqueue(incident, signal.Time.UtcTicks + _policy.CorrelationWindow.Ticks);
        }

        incident.Add(signal, _policy);
        if (incident.DetectedAt is not null)
        {
            // A day that raised an alert is kept out of the baselines and later rolling totals, so an attack
            // neither becomes the user's new normal nor is reported again every day for a month.
            user.Baseline.Today.Tainted = true;
        }
    }

    /// <summary>
    /// Group-wide export days (a campaign, a period close) are not individual anomalies: when at least
    /// three members and a quarter of the group's active members exported unusually much for themselves
    /// on the same local day, export reasons of that day are damped and say so. Likewise a day on which a
    /// group worked at hours rare for each of them (an incident that kept a support team late) damps the
    /// odd-hours reason. Checked when the finding closes, by which time the whole day of the group has been seen.
    /// </summary>
    private static Func<Reason, Reason> Synchronised(Incident incident)
    {
        var peers = incident.User.Peers;
        var exports = peers.IsGroupWide(incident.Day);
        var late = peers.IsGroupWideOddHours(incident.Day);
        if (!exports && !late)
        {
            return reason => reason;
        }

        var (unusual, active) = peers.Synchrony(incident.Day);
        var (odd, _) = peers.OddHoursSynchrony(incident.Day);
        return reason => reason.Code switch
        {
            ReasonCodes.OwnHistory or ReasonCodes.PeerHistory or ReasonCodes.Cumulative7 or ReasonCodes.Cumulative30 when exports => reason with
            {
                Score = Math.Round(reason.Score * 0.4, 1),
                Text = $"{reason.Text}; damped: {unusual} of {active} active peers exported unusually much the same day (group-wide, e.g. a campaign or period close)",
            },
            ReasonCodes.RareHour when late => reason with
            {
                Score = Math.Round(reason.Score * 0.4, 1),
                Text = $"{reason.Text}; damped: {odd} of {active} active peers worked at hours rare for them the same day (group-wide, e.g. an incident)",
            },
            _ => reason,
        };
    }

    private void Close(Incident incident, List<Finding> closed)
    {
        if (incident.Closed)
        {
            return;
        }

        incident.Closed = true;
        if (incident.User.Open == incident)
        {
            incident.User.Open = null;
        }

        var finding = incident.ToFinding(_policy, Synchronised(incident));
        if (finding.Score < _policy.MinFindingScore)
        {
            return;
        }

        FindingsWritten++;
        if (!_history.TryGetValue(finding.UserId, out var list))
        {
            list = [];
            _history[finding.UserId] = list;
        }

        list.Add((finding.WindowEnd, finding.Score, finding.Reasons[0].Code));
        closed.Add(finding);
    }

    /// <summary>Runtime state of one user: their baselines, today's profile and accumulators, and the open finding.</summary>
    private sealed class UserContext(UserBaseline baseline, PeerBaseline peers, DirectoryUser? directory, bool isAdmin)
    {
        public UserBaseline Baseline { get; } = baseline;

        public PeerBaseline Peers { get; private set; } = peers;

        public DirectoryUser? Directory { get; private set; } = directory;

        public bool IsAdmin { get; private set; } = isAdmin;

        /// <summary>Another object with the same data (a newer directory in which this person did not change).</summary>
        public void KeepRow(DirectoryUser? row) => Directory = row;

        /// <summary>New directory data (see <see cref="Scorer.Rebind"/>): the caches that hang on the old data are dropped.</summary>
        public void Rebind(DirectoryUser? row, PeerBaseline peers, bool isAdmin)
        {
            Directory = row;
            Peers = peers;
            IsAdmin = isAdmin;
            Profile?.MovePeers(peers);
            _offsetFrom = long.MaxValue; // the time zone may have changed
            _offsetTo = long.MinValue;
            RarityCacheSlot = -1;
            HoursFilled = false;
        }

        public DayProfile? Profile { get; set; }

        public double OddRecordsToday { get; set; }

        public List<string> DayEvidence { get; } = [];

        public List<string> OddEvidence { get; } = [];

        public HashSet<string> CountriesToday { get; } = new(StringComparer.OrdinalIgnoreCase);

        /// <summary>Today's reads of single records, made on the user's first one (most users of a log never read one by id).</summary>
        public SnoopingDay? Snooping { get; set; }

        public int RarityCacheSlot { get; set; } = -1;

        /// <summary>The user's hour profile, refilled once per user-day on first need.</summary>
        public HourProfile? Hours { get; set; }

        public bool HoursFilled { get; set; }

        public long HoursPeerDays { get; set; }

        private long _offsetFrom = long.MaxValue;
        private long _offsetTo = long.MinValue;
        private long _offset;

        /// <summary>Local time in the user's zone, with the UTC offset looked up about once a day per user.</summary>
        public LocalTime LocalTimeOf(DateTimeOffset timestamp)
        {
            var utc = timestamp.UtcTicks;
            if (utc < _offsetFrom || utc >= _offsetTo)
            {
                // Zones change offset at most once or twice a year: when the offset is the same now and a
                // day later, it holds for that whole day.
                var zone = Directory?.TimeZone ?? TimeZoneInfo.Utc;
                _offset = zone.GetUtcOffset(new DateTime(utc, DateTimeKind.Utc)).Ticks;
                var later = zone.GetUtcOffset(new DateTime(utc + TimeSpan.TicksPerDay, DateTimeKind.Utc)).Ticks;
                _offsetFrom = utc;
                _offsetTo = later == _offset ? utc + TimeSpan.TicksPerDay : utc + 1;
            }

            var local = new DateTime(utc + _offset, DateTimeKind.Unspecified);
            return new LocalTime(local, (int)(local.Ticks / TimeSpan.TicksPerDay), local.Hour, local.DayOfWeek);
        }

        public string? HomeCountry { get; set; }

        public string? LastCountry { get; set; }

        /// <summary>Where the user's latest event with a country came from, across days (impossible travel).</summary>
        public Whereabouts? Whereabouts { get; set; }

        public HourRarity RarityCache { get; set; }

        public Incident? Open { get; set; }

        /// <summary>Writes the user's day so far (see <see cref="Scorer.WriteState"/>); the done-pairs bit set is rebuilt from the baseline.</summary>
        public void WriteState(BinaryWriter w)
        {
            w.Write(Profile is not null);
            Profile?.WriteState(w);
            w.Write(OddRecordsToday);
            WriteList(w, DayEvidence);
            WriteList(w, OddEvidence);
            WriteList(w, CountriesToday);
            w.Write(Snooping is not null);
            Snooping?.WriteState(w);
            w.Write(RarityCacheSlot);
            var rarity = RarityCache;
            w.Write(rarity.Rare);
            w.Write(rarity.Share);
            w.Write(rarity.Travelling);
            WriteText(w, rarity.TravelCountry);
            w.Write(rarity.Hour);
            w.Write((int)rarity.Weekday);
            w.Write(rarity.FromPeers);
            w.Write(rarity.HomeRare);
            w.Write(Hours is not null);
            Hours?.WriteState(w);
            w.Write(HoursFilled);
            w.Write(HoursPeerDays);
            WriteText(w, HomeCountry);
            WriteText(w, LastCountry);
            w.Write(Whereabouts is not null);
            Whereabouts?.WriteState(w);
        }

        public void ReadState(BinaryReader r, ScoringPolicy policy)
        {
            Profile = r.ReadBoolean() ? DayProfile.ReadState(r, Baseline, Peers, policy) : null;
            OddRecordsToday = r.ReadDouble();
            ReadList(r, DayEvidence);
            ReadList(r, OddEvidence);
            ReadList(r, CountriesToday);
            Snooping = r.ReadBoolean() ? SnoopingDay.ReadState(r) : null;
            RarityCacheSlot = r.ReadInt32();
            RarityCache = new HourRarity(r.ReadBoolean(), r.ReadDouble(), r.ReadBoolean(), ReadText(r), r.ReadInt32(), (DayOfWeek)r.ReadInt32(), r.ReadBoolean(), r.ReadBoolean());
            Hours = r.ReadBoolean() ? HourProfile.ReadState(r, policy.OddHours.KernelHours) : null;
            HoursFilled = r.ReadBoolean();
            HoursPeerDays = r.ReadInt64();
            HomeCountry = ReadText(r);
            LastCountry = ReadText(r);
            Whereabouts = r.ReadBoolean() ? Whereabouts.ReadState(r) : null;
        }

        private ulong[] _done = [];

        /// <summary>True when the user has done the entity/action pair with this id (<see cref="EntityActionKeys"/>).</summary>
        public bool HasDone(int id) => (id >> 6) < _done.Length && (_done[id >> 6] & (1UL << id)) != 0;

        /// <summary>Records the pair; false when it was already recorded.</summary>
        public bool MarkDone(int id)
        {
            if ((id >> 6) >= _done.Length)
            {
                Array.Resize(ref _done, Math.Max((id >> 6) + 1, _done.Length * 2));
            }

            ref var word = ref _done[id >> 6];
            var bit = 1UL << id;
            if ((word & bit) != 0)
            {
                return false;
            }

            word |= bit;
            return true;
        }
    }

    /// <summary>Signals of one user close in time, correlated into one finding when the window closes.</summary>
    private sealed class Incident(UserContext user, DateTimeOffset start, int day)
    {
        public int Day { get; } = day;

        private readonly Dictionary<string, Reason> _best = new(StringComparer.Ordinal);
        private readonly List<string> _events = [];
        private readonly HashSet<string> _eventSet = new(StringComparer.Ordinal);

        public UserContext User { get; } = user;

        public DateTimeOffset Start { get; } = start;

        public DateTimeOffset End { get; private set; } = start;

        public DateTimeOffset? DetectedAt { get; private set; }

        public bool Learning { get; private set; }

        public bool Closed { get; set; }

        public void Add(Signal signal, ScoringPolicy policy)
        {
            if (!_best.TryGetValue(signal.Reason.Code, out var existing) || signal.Reason.Score >= existing.Score)
            {
                _best[signal.Reason.Code] = signal.Reason;
            }

            if (signal.Time > End)
            {
                End = signal.Time;
            }

            Learning |= signal.Learning;
            foreach (var id in signal.Evidence)
            {
                if (_events.Count < 50 && _eventSet.Add(id))
                {
                    _events.Add(id);
                }
            }

            if (DetectedAt is null && ScoreCurve.Combine(_best.Values.Select(r => r.Score)) >= policy.MediumScore)
            {
                DetectedAt = signal.Time;
            }
        }

        /// <summary>Writes the incident (its user by id, and whether it is the user's open one) into a snapshot.</summary>
        public void WriteState(BinaryWriter w)
        {
            w.Write(User.Baseline.UserId);
            w.Write(ReferenceEquals(User.Open, this));
            w.Write(Day);
            WriteTime(w, Start);
            WriteTime(w, End);
            w.Write(DetectedAt.HasValue);
            WriteTime(w, DetectedAt ?? default);
            w.Write(Learning);
            w.Write(Closed);
            w.Write(_best.Count);
            foreach (var (code, reason) in _best)
            {
                w.Write(code);
                w.Write(reason.Code);
                w.Write(reason.Score);
                w.Write(reason.Text);
                w.Write(reason.Typical.HasValue);
                w.Write(reason.Typical ?? 0);
                w.Write(reason.Actual.HasValue);
                w.Write(reason.Actual ?? 0);
            }

            WriteList(w, _events);
        }

        public static Incident ReadState(BinaryReader r, Dictionary<string, UserContext> users)
        {
            var userId = r.ReadString();
            if (!users.TryGetValue(userId, out var user))
            {
                throw new InvalidDataException($"The snapshot has an open finding of '{userId}' but not the user.");
            }

            var open = r.ReadBoolean();
            var day = r.ReadInt32();
            var incident = new Incident(user, ReadTime(r), day) { End = ReadTime(r) };
            var detected = r.ReadBoolean();
            var detectedAt = ReadTime(r);
            incident.DetectedAt = detected ? detectedAt : null;
            incident.Learning = r.ReadBoolean();
            incident.Closed = r.ReadBoolean();
            for (var i = r.ReadInt32(); i > 0; i--)
            {
                var key = r.ReadString();
                var code = r.ReadString();
                var score = r.ReadDouble();
                var text = r.ReadString();
                var hasTypical = r.ReadBoolean();
                var typical = r.ReadDouble();
                var hasActual = r.ReadBoolean();
                var actual = r.ReadDouble();
                incident._best[key] = new Reason(code, score, text, hasTypical ? typical : null, hasActual ? actual : null);
            }

            for (var i = r.ReadInt32(); i > 0; i--)
            {
                var id = r.ReadString();
                incident._events.Add(id);
                incident._eventSet.Add(id);
            }

            if (open)
            {
                user.Open = incident;
            }

            return incident;
        }

        public Finding ToFinding(ScoringPolicy policy, Func<Reason, Reason> adjust)
        {
            var reasons = _best.Values.Select(adjust).OrderByDescending(r => r.Score).ToList();
            // Whole, as shown (rounded down, see Finding.Score): the severity is decided on the score a reviewer reads.
            var score = Math.Floor(ScoreCurve.Combine(reasons.Select(r => r.Score)));
            var detectors = reasons.Select(r => r.Detector).Distinct().ToList();
            var userId = User.Baseline.UserId;
            return new Finding
            {
                Id = "f-" + EventOrderingHash(userId, Start.UtcTicks),
                UserId = userId,
                UserName = User.Directory?.UserName,
                PeerGroup = User.Peers.Group,
                Detector = reasons[0].Detector,
                Detectors = detectors,
                Score = score,
                Severity = policy.SeverityOf(score),
                WindowStart = Start,
                WindowEnd = End,
                DetectedAt = DetectedAt ?? End,
                Reasons = reasons,
                EventIds = [.. _events], // a copy: a live service snapshots open findings that keep growing
                Learning = Learning,
            };
        }

        private static string EventOrderingHash(string userId, long ticks) =>
            Ingestion.EventOrdering.Hash(string.Concat(userId, "@", ticks.ToString(CultureInfo.InvariantCulture))).ToString("x16", CultureInfo.InvariantCulture);
    }
}
