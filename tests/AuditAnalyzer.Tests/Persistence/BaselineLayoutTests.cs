using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Persistence;

namespace CrmSecurity.AuditAnalyzer.Tests.Persistence;

/// <summary>
/// The stored form of a user's baseline: day counters by name (layout 2), and baselines saved by the build before
/// (layout 1, four fixed counters) still read, so an upgraded <c>analyze --database</c> continues from them.
/// </summary>
public sealed class BaselineLayoutTests
{
    [Fact]
    public void Every_day_counter_and_the_users_book_survive_a_save_and_load()
    {
        var b = new UserBaseline("sam", 60) { PeerGroup = "Sales/AE", CurrentDay = 740_100 };
        b.OpenDay(740_100);
        b.MarkActive(10);
        b.Today.Exported = 40;
        b.Today.Counters[DayCounters.OutsideBook] = 17;
        b.Today.Counters[DayCounters.DistinctRecords] = 23;
        b.History[DayCounters.OutsideBook][0] = 5;
        b.HistoryExported[0] = 30;
        b.HistoryCount = 1;
        b.HistoryNext = 1;
        b.BookUnits["DACH"] = 4;

        var loaded = BaselineSerializer.ReadUser("sam", BaselineSerializer.Write(b), 60);

        Assert.Equal(17, loaded.Today.Counters[DayCounters.OutsideBook]);
        Assert.Equal(23, loaded.Today.Counters[DayCounters.DistinctRecords]);
        Assert.Equal(40, loaded.Today.Exported);
        Assert.Equal(5, loaded.History[DayCounters.OutsideBook][0]);
        Assert.Equal(30, loaded.HistoryExported[0]);
        Assert.Equal(4, loaded.BookUnits["DACH"]);
        Assert.Equal(BaselineSerializer.Write(b), BaselineSerializer.Write(loaded));
    }

    [Fact]
    public void A_baseline_saved_by_the_previous_build_reads_with_its_counters_and_new_ones_at_zero()
    {
        var stored = LayoutOne(history: [(100, 200, 3, 0), (120, 180, 0, 0)], today: (740_100, 55, 70, 2, 0));

        var b = BaselineSerializer.ReadUser("old", stored, 60);

        Assert.Equal("Sales/AE", b.PeerGroup);
        Assert.Equal(2, b.HistoryCount);
        Assert.Equal([100f, 120f], b.HistoryExported[..2]);
        Assert.Equal([200f, 180f], b.HistoryRead[..2]);
        Assert.Equal(3, b.HistoryDecrypted[0]);
        Assert.Equal(0, b.History[DayCounters.OutsideBook][0]);
        var today = b.Recent[740_100 % UserBaseline.RecentDays];
        Assert.Equal(55, today.Exported);
        Assert.Equal(70, today.Read);
        Assert.Equal(2, today.Decrypted);
        Assert.Equal(0, today.Counters[DayCounters.DistinctRecords]);
        Assert.Equal(1u << 10, today.HoursMask);
        Assert.Contains("contact:read", b.EntityActions);
        Assert.Equal(9, b.Countries["GB"]);
        Assert.Empty(b.BookUnits);
    }

    [Fact]
    public void A_layout_this_build_does_not_know_is_refused_naming_the_user_and_the_layouts_it_reads()
    {
        var stored = LayoutOne(history: [], today: (740_100, 1, 1, 0, 0));
        stored[0] = 9;

        var error = Assert.Throws<InvalidDataException>(() => BaselineSerializer.ReadUser("old", stored, 60));

        Assert.Contains("'old' has layout version 9", error.Message, StringComparison.Ordinal);
        Assert.Contains("versions 1 and 2", error.Message, StringComparison.Ordinal);
    }

    /// <summary>A user's baseline in layout 1, byte for byte as the build before named counters wrote it.</summary>
    private static byte[] LayoutOne((float E, float R, float D, float A)[] history, (int Day, float E, float R, float D, float A) today)
    {
        const int historyDays = 60;
        using var memory = new MemoryStream();
        using (var w = new BinaryWriter(memory))
        {
            w.Write((byte)1);
            w.Write(historyDays);
            w.Write("Sales/AE");
            w.Write(history.Length + 1); // active days
            w.Write(today.Day - 40); // first day
            w.Write(today.Day); // last active day
            w.Write(today.Day); // current day
            w.Write(0L); // last event ticks
            for (var i = 0; i < 168; i++)
            {
                w.Write(0);
            }

            for (var i = 0; i < 7; i++)
            {
                w.Write(0);
            }

            for (var i = 0; i < UserBaseline.RecentDays; i++)
            {
                var isToday = i == today.Day % UserBaseline.RecentDays;
                w.Write(isToday ? today.Day : 0);
                w.Write(isToday ? today.E : 0f);
                w.Write(isToday ? today.R : 0f);
                w.Write(isToday ? today.D : 0f);
                w.Write(isToday ? today.A : 0f);
                w.Write(isToday ? 1u << 10 : 0u);
                w.Write(false);
            }

            w.Write(history.Length);
            w.Write(history.Length % historyDays);
            for (var i = 0; i < historyDays; i++)
            {
                var (e, r, d, a) = i < history.Length ? history[i] : default;
                w.Write(e);
                w.Write(r);
                w.Write(d);
                w.Write(a);
            }

            w.Write(1);
            w.Write("contact:read");
            w.Write(1);
            w.Write("GB");
            w.Write(9);
            w.Write(0); // sensitive exports
            w.Write(0); // grants
        }

        return memory.ToArray();
    }
}
