using System.IO.Hashing;
using System.Runtime.InteropServices;
using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Organisation;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// One user's reads of single records during the current local day: which distinct records they read, which of them
/// lay outside their book, and whose those were. Kept by the scorer per user and cleared when the day closes, so its
/// size is bounded by one day's reads (and capped), never by history. It writes the day's
/// <see cref="DayCounters.OutsideBook"/> and <see cref="DayCounters.DistinctRecords"/> counters.
/// </summary>
internal sealed class SnoopingDay
{
    /// <summary>Most distinct records remembered per day; beyond it the counts stop growing (the day has long crossed any threshold).</summary>
    private const int MaxRecords = 20_000;

    // Records are remembered by a 64-bit hash of entity and id, not by a string built per read: the strings outlived
    // the young generation (a day), which made every collection of a long pass copy them. Two records of one user's
    // day share a hash with odds of about 1 in 10^11 at the 20,000 cap, and then the count is one lower.
    private readonly HashSet<ulong> _records = [];
    private readonly HashSet<ulong> _outside = [];
    private readonly Dictionary<string, int> _outsideByOwner = new(StringComparer.Ordinal);
    private readonly HashSet<string> _unitsToday = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _outsideUnits = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The outside-book events of the day (the first 20), the finding's evidence.</summary>
    public List<string> Evidence { get; } = [];

    /// <summary>How many outside-book records the day's most-read foreign owner accounts for.</summary>
    public int TopOwnerRecords { get; private set; }

    public int OutsideOwners => _outsideByOwner.Count;

    public IReadOnlyCollection<string> OutsideUnits => _outsideUnits;

    /// <summary>The counter value last reported (so a finding grows in steps, not with every read).</summary>
    public double LastReported { get; set; }

    /// <summary>
    /// Folds the day's units into the user's book and forgets the day. Called when the user's next day opens, so a
    /// day's reads never make themselves normal while they are being scored.
    /// </summary>
    public void Close(UserBaseline baseline)
    {
        foreach (var unit in _unitsToday)
        {
            baseline.BookUnits[unit] = baseline.BookUnits.GetValueOrDefault(unit) + 1;
        }

        _records.Clear();
        _outside.Clear();
        _outsideByOwner.Clear();
        _unitsToday.Clear();
        _outsideUnits.Clear();
        Evidence.Clear();
        TopOwnerRecords = 0;
        LastReported = 0;
    }

    /// <summary>Writes the day so far into a scorer snapshot (the records as their hashes, the sets in their order).</summary>
    public void WriteState(BinaryWriter w)
    {
        WriteHashes(w, _records);
        WriteHashes(w, _outside);
        w.Write(_outsideByOwner.Count);
        foreach (var (owner, count) in _outsideByOwner)
        {
            w.Write(owner);
            w.Write(count);
        }

        WriteStrings(w, _unitsToday);
        WriteStrings(w, _outsideUnits);
        WriteStrings(w, Evidence);
        w.Write(TopOwnerRecords);
        w.Write(LastReported);
    }

    /// <summary>Reads a day written by <see cref="WriteState"/>.</summary>
    public static SnoopingDay ReadState(BinaryReader r)
    {
        var day = new SnoopingDay();
        ReadHashes(r, day._records);
        ReadHashes(r, day._outside);
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            day._outsideByOwner[r.ReadString()] = r.ReadInt32();
        }

        ReadStrings(r, day._unitsToday);
        ReadStrings(r, day._outsideUnits);
        ReadStrings(r, day.Evidence);
        day.TopOwnerRecords = r.ReadInt32();
        day.LastReported = r.ReadDouble();
        return day;
    }

    private static void WriteHashes(BinaryWriter w, HashSet<ulong> hashes)
    {
        w.Write(hashes.Count);
        foreach (var hash in hashes)
        {
            w.Write(hash);
        }
    }

    private static void ReadHashes(BinaryReader r, HashSet<ulong> hashes)
    {
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            hashes.Add(r.ReadUInt64());
        }
    }

    private static void WriteStrings(BinaryWriter w, IReadOnlyCollection<string> values)
    {
        w.Write(values.Count);
        foreach (var value in values)
        {
            w.Write(value);
        }
    }

    private static void ReadStrings(BinaryReader r, ICollection<string> into)
    {
        for (var i = r.ReadInt32(); i > 0; i--)
        {
            into.Add(r.ReadString());
        }
    }

    /// <summary>A unit the user read on <c>book_days</c> earlier days and on <c>book_share</c> of their active days.</summary>
    private static bool InBook(UserBaseline baseline, string unit, SnoopingPolicy rules)
    {
        var days = baseline.BookUnits.GetValueOrDefault(unit);
        return days >= rules.BookDays && days >= rules.BookShare * baseline.ActiveDays;
    }

    private static ulong KeyOf(string? entity, string record)
    {
        var id = XxHash3.HashToUInt64(MemoryMarshal.AsBytes(record.AsSpan()));
        return entity is null ? id : XxHash3.HashToUInt64(MemoryMarshal.AsBytes(entity.AsSpan()), unchecked((long)id));
    }

    /// <summary>True for a successful read of one named record: what snooping is made of.</summary>
    public static bool IsRecordRead(AccessEvent e) => e.Succeeded && e.Action == AccessAction.Read && e.RecordId is not null;

    /// <summary>
    /// Counts a read. A record is outside the user's book when the source names its business unit, that unit is not the
    /// user's own (directory), it is not in their book (read on <c>book_days</c> earlier days and on <c>book_share</c> of their
    /// active days), and the record is not theirs.
    /// The records of the day's single most-read foreign owner are left out of the counter: covering for one absent
    /// colleague is not browsing other people's customers.
    /// </summary>
    public void Add(AccessEvent e, ref DayTotals today, UserBaseline baseline, DirectoryUser? directory, SnoopingPolicy rules)
    {
        if (!IsRecordRead(e) || _records.Count >= MaxRecords)
        {
            return;
        }

        var key = KeyOf(e.Entity, e.RecordId!);
        if (!_records.Add(key))
        {
            return; // read again today: one record
        }

        today.Counters[DayCounters.DistinctRecords] = _records.Count;
        if (e.RecordBusinessUnit is not { } unit)
        {
            return;
        }

        _unitsToday.Add(unit);
        var own = directory?.BusinessUnit is { } home && string.Equals(home, unit, StringComparison.OrdinalIgnoreCase);
        var theirs = e.RecordOwner is { } owner && string.Equals(owner, e.UserId, StringComparison.Ordinal);
        if (own || theirs || InBook(baseline, unit, rules) || !_outside.Add(key))
        {
            return;
        }

        _outsideUnits.Add(unit);
        var by = e.RecordOwner ?? "";
        var count = _outsideByOwner.GetValueOrDefault(by) + 1;
        _outsideByOwner[by] = count;
        if (by.Length > 0 && count > TopOwnerRecords)
        {
            TopOwnerRecords = count;
        }

        today.Counters[DayCounters.OutsideBook] = _outside.Count - TopOwnerRecords;
        if (Evidence.Count < 20)
        {
            Evidence.Add(e.EventId);
        }
    }
}
