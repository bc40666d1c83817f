using CrmSecurity.AuditAnalyzer.Baselines;

namespace CrmSecurity.AuditAnalyzer.Persistence;

/// <summary>
/// Compact binary form of the baselines (a few KB per user), versioned so a later build can read or
/// refuse an older layout explicitly.
/// </summary>
internal static class BaselineSerializer
{
    public const byte Version = 1;

    public static byte[] Write(UserBaseline b)
    {
        using var memory = new MemoryStream(4096);
        using (var w = new BinaryWriter(memory))
        {
            w.Write(Version);
            w.Write(b.HistoryExported.Length);
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
                w.Write(d.Exported);
                w.Write(d.Read);
                w.Write(d.Decrypted);
                w.Write(d.AdminBusinessRead);
                w.Write(d.HoursMask);
                w.Write(d.Tainted);
            }

            w.Write(b.HistoryCount);
            w.Write(b.HistoryNext);
            for (var i = 0; i < b.HistoryExported.Length; i++)
            {
                w.Write(b.HistoryExported[i]);
                w.Write(b.HistoryRead[i]);
                w.Write(b.HistoryDecrypted[i]);
                w.Write(b.HistoryAdminRead[i]);
            }

            w.Write(b.EntityActions.Count);
            foreach (var key in b.EntityActions)
            {
                w.Write(key);
            }

            w.Write(b.Countries.Count);
            foreach (var (country, count) in b.Countries)
            {
                w.Write(country);
                w.Write(count);
            }

            w.Write(b.SensitiveExports.Count);
            foreach (var (entity, totals) in b.SensitiveExports)
            {
                w.Write(entity);
                foreach (var v in totals)
                {
                    w.Write(v);
                }
            }

            w.Write(b.Grants.Count);
            foreach (var g in b.Grants)
            {
                w.Write(g.Ticks);
                w.Write(g.Privilege);
                w.Write(g.GrantedBy);
                w.Write(g.EventId);
            }
        }

        return memory.ToArray();
    }

    public static UserBaseline ReadUser(string userId, byte[] data, int historyDays)
    {
        using var r = new BinaryReader(new MemoryStream(data));
        CheckVersion(r.ReadByte(), userId);
        var storedHistory = r.ReadInt32();
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
            b.Recent[i] = new DayTotals
            {
                Day = r.ReadInt32(),
                Exported = r.ReadSingle(),
                Read = r.ReadSingle(),
                Decrypted = r.ReadSingle(),
                AdminBusinessRead = r.ReadSingle(),
                HoursMask = r.ReadUInt32(),
                Tainted = r.ReadBoolean(),
            };
        }

        var count = r.ReadInt32();
        var next = r.ReadInt32();
        var kept = 0;
        // Oldest first, so a changed history_days keeps the most recent days.
        var values = new (float E, float R, float D, float A)[storedHistory];
        for (var i = 0; i < storedHistory; i++)
        {
            values[i] = (r.ReadSingle(), r.ReadSingle(), r.ReadSingle(), r.ReadSingle());
        }

        var start = count < storedHistory ? 0 : next;
        for (var k = Math.Max(0, count - historyDays); k < count; k++)
        {
            var v = values[(start + k) % storedHistory];
            b.HistoryExported[kept] = v.E;
            b.HistoryRead[kept] = v.R;
            b.HistoryDecrypted[kept] = v.D;
            b.HistoryAdminRead[kept] = v.A;
            kept++;
        }

        b.HistoryCount = kept;
        b.HistoryNext = kept % historyDays;

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            b.EntityActions.Add(r.ReadString());
        }

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            b.Countries[r.ReadString()] = r.ReadInt32();
        }

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            var entity = r.ReadString();
            var totals = new float[UserBaseline.RecentDays];
            for (var k = 0; k < totals.Length; k++)
            {
                totals[k] = r.ReadSingle();
            }

            b.SensitiveExports[entity] = totals;
        }

        for (var i = r.ReadInt32(); i > 0; i--)
        {
            b.Grants.Add(new Grant(r.ReadInt64(), r.ReadString(), r.ReadString(), r.ReadString()));
        }

        return b;
    }

    public static byte[] Write(PeerBaseline p)
    {
        using var memory = new MemoryStream(16384);
        using (var w = new BinaryWriter(memory))
        {
            w.Write(Version);
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
        CheckVersion(r.ReadByte(), group);
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

    private static void CheckVersion(byte version, string owner)
    {
        if (version != Version)
        {
            throw new InvalidDataException($"The stored baseline of '{owner}' has layout version {version}; this build reads version {Version}.");
        }
    }
}
