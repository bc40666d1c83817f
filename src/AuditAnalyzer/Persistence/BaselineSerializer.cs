using CrmSecurity.AuditAnalyzer.Baselines;

namespace CrmSecurity.AuditAnalyzer.Persistence;

/// <summary>
/// Compact binary form of the baselines (a few KB per user), versioned so a later build can read or
/// refuse an older layout explicitly. A user's baseline is written in layout 2, which names its day counters
/// (<see cref="DayCounters"/>) so a counter added later reads as zero from an older baseline and one a later build
/// dropped is skipped; layout 1 (four fixed counters, before the snooping detector) is still read.
/// Peer baselines keep layout 1.
/// </summary>
internal static class BaselineSerializer
{
    public const byte Version = 2;

    /// <summary>The layout of user baselines saved before day counters were named.</summary>
    private const byte FixedCountersVersion = 1;

    private const byte PeerVersion = 1;

    /// <summary>The counters of layout 1, in their stored order.</summary>
    private static readonly int[] FixedCounters = [DayCounters.Exported, DayCounters.Read, DayCounters.Decrypted, DayCounters.AdminBusinessRead];

    public static byte[] Write(UserBaseline b)
    {
        using var memory = new MemoryStream(4096);
        using (var w = new BinaryWriter(memory))
        {
            w.Write(Version);
            w.Write(b.HistoryExported.Length);
            w.Write(DayCounters.Count);
            foreach (var name in DayCounters.Names)
            {
                w.Write(name);
            }

            w.Write(b.PeerGroup);
            w.Write(b.ActiveDays);
            w.Write(b.FirstDay);
            w.Write(b.LastActiveDay);
            w.Write(b.CurrentDay);
            w.Write(b.LastEventTicks);
            foreach (var v in b.HourSlots)
            {
                w.Write(v);
            }

            foreach (var v in b.ActiveDaysByWeekday)
            {
                w.Write(v);
            }

            foreach (var d in b.Recent)
            {
                w.Write(d.Day);
                for (var c = 0; c < DayCounters.Count; c++)
                {
                    w.Write(d.Counters[c]);
                }

                w.Write(d.HoursMask);
                w.Write(d.Tainted);
            }

            w.Write(b.HistoryCount);
            w.Write(b.HistoryNext);
            for (var i = 0; i < b.HistoryExported.Length; i++)
            {
                for (var c = 0; c < DayCounters.Count; c++)
                {
                    w.Write(b.History[c][i]);
                }
            }

            b.WriteLearned(w);
            b.WriteBookUnits(w);
        }

        return memory.ToArray();
    }

    public static UserBaseline ReadUser(string userId, byte[] data, int historyDays)
    {
        using var r = new BinaryReader(new MemoryStream(data));
        var version = r.ReadByte();
        if (version != Version && version != FixedCountersVersion)
        {
            throw LayoutError(version, userId);
        }

        var storedHistory = r.ReadInt32();
        // Where each stored counter goes in this build (-1: not kept any more).
        var stored = FixedCounters;
        if (version == Version)
        {
            stored = new int[r.ReadInt32()];
            for (var i = 0; i < stored.Length; i++)
            {
                stored[i] = DayCounters.IndexOf(r.ReadString());
            }
        }

        var b = new UserBaseline(userId, historyDays)
        {
            PeerGroup = r.ReadString(),
            ActiveDays = r.ReadInt32(),
            FirstDay = r.ReadInt32(),
            LastActiveDay = r.ReadInt32(),
            CurrentDay = r.ReadInt32(),
            LastEventTicks = r.ReadInt64(),
        };
        for (var i = 0; i < 168; i++)
        {
            b.HourSlots[i] = r.ReadInt32();
        }

        for (var i = 0; i < 7; i++)
        {
            b.ActiveDaysByWeekday[i] = r.ReadInt32();
        }

        for (var i = 0; i < UserBaseline.RecentDays; i++)
        {
            var day = new DayTotals { Day = r.ReadInt32() };
            foreach (var counter in stored)
            {
                var value = r.ReadSingle();
                if (counter >= 0)
                {
                    day.Counters[counter] = value;
                }
            }

            day.HoursMask = r.ReadUInt32();
            day.Tainted = r.ReadBoolean();
            b.Recent[i] = day;
        }

        var count = r.ReadInt32();
        var next = r.ReadInt32();
        var kept = 0;
        // Oldest first, so a changed history_days keeps the most recent days.
        var values = new float[storedHistory, stored.Length];
        for (var i = 0; i < storedHistory; i++)
        {
            for (var c = 0; c < stored.Length; c++)
            {
                values[i, c] = r.ReadSingle();
            }
        }

        var start = count < storedHistory ? 0 : next;
        for (var k = Math.Max(0, count - historyDays); k < count; k++)
        {
            var slot = (start + k) % storedHistory;
            for (var c = 0; c < stored.Length; c++)
            {
                if (stored[c] >= 0)
                {
                    b.History[stored[c]][kept] = values[slot, c];
                }
            }

            kept++;
        }

        b.HistoryCount = kept;
        b.HistoryNext = kept % historyDays;

        b.ReadLearned(r);
        if (version == Version)
        {
            b.ReadBookUnits(r);
        }

        return b;
    }

    public static byte[] Write(PeerBaseline p)
    {
        using var memory = new MemoryStream(16384);
        using (var w = new BinaryWriter(memory))
        {
            w.Write(PeerVersion);
            w.Write(p.Members.Count);
            foreach (var member in p.Members)
            {
                w.Write(member);
            }

            w.Write(p.PoolCount);
            w.Write(p.PoolNext);
            for (var i = 0; i < PeerBaseline.PoolSize; i++)
            {
                w.Write(p.PoolExported[i]);
                w.Write(p.PoolRead[i]);
                w.Write(p.PoolDecrypted[i]);
            }

            foreach (var v in p.HourSlots)
            {
                w.Write(v);
            }

            foreach (var v in p.ActiveDaysByWeekday)
            {
                w.Write(v);
            }

            w.Write(p.EntityActionMembers.Count);
            foreach (var (key, members) in p.EntityActionMembers)
            {
                w.Write(key);
                w.Write(members);
            }
        }

        return memory.ToArray();
    }

    public static PeerBaseline ReadPeer(string group, byte[] data)
    {
        using var r = new BinaryReader(new MemoryStream(data));
        var version = r.ReadByte();
        if (version != PeerVersion)
        {
            throw LayoutError(version, group);
        }

        var p = new PeerBaseline(group);
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            p.Members.Add(r.ReadString());
        }

        p.PoolCount = r.ReadInt32();
        p.PoolNext = r.ReadInt32();
        for (var i = 0; i < PeerBaseline.PoolSize; i++)
        {
            p.PoolExported[i] = r.ReadSingle();
            p.PoolRead[i] = r.ReadSingle();
            p.PoolDecrypted[i] = r.ReadSingle();
        }

        for (var i = 0; i < 168; i++)
        {
            p.HourSlots[i] = r.ReadInt64();
        }

        for (var i = 0; i < 7; i++)
        {
            p.ActiveDaysByWeekday[i] = r.ReadInt64();
        }

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            p.EntityActionMembers[r.ReadString()] = r.ReadInt32();
        }

        return p;
    }

    private static InvalidDataException LayoutError(byte version, string owner) =>
        new($"The stored baseline of '{owner}' has layout version {version}; this build reads versions {FixedCountersVersion} and {Version} (peers: {PeerVersion}).");
}
