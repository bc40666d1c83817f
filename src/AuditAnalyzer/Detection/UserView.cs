using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Organisation;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// What the baselines say about a user for the current local day, computed once when the day opens so
/// each event costs a few comparisons. Built from baselines that do not include today.
/// </summary>
internal sealed record DayProfile
{
    public required int Day { get; init; }

    public required int ActiveDaysBefore { get; init; }

    public required bool Learning { get; init; }

    public required RobustStats Export { get; init; }

    public required RobustStats Read { get; init; }

    public required RobustStats Decrypt { get; init; }

    public required RobustStats AdminRead { get; init; }

    /// <summary>Mean exported per active day over history older than the recent window (for rolling totals).</summary>
    public required double LongTermExportMean { get; init; }

    public required int LongTermDays { get; init; }

    /// <summary>Records exported in a day above which the day is unusual for this user; +inf in learning mode.</summary>
    public required double OwnExportThreshold { get; init; }

    /// <summary>The peer group's daily export quantile (policy <c>peer_quantile</c>), NaN when the group has too few member-days.</summary>
    public required double PeerExportQuantile { get; init; }

    public required double PeerExportMean { get; init; }

    public required double PeerReadMedian { get; init; }

    public required double DecryptThreshold { get; init; }

    public required double AdminReadThreshold { get; init; }

    /// <summary>Days since the previous active day when that gap is at least the dormancy limit; else 0.</summary>
    public required int DormantGapDays { get; init; }

    public required int TypicalGapDays { get; init; }

    /// <summary>Hours with activity on a typical active day (hour-of-week slots over active days).</summary>
    public required double ActiveHoursPerDay { get; init; }
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

/// <summary>How usual an hour of the week is for a user (or, in learning mode, for their peers).</summary>
internal readonly record struct HourRarity(bool Rare, double Share, bool Travelling, string? TravelCountry, int Hour, DayOfWeek Weekday, bool FromPeers);

/// <summary>Everything a detector may look at for one event: the event's user, their baselines, peers and directory row.</summary>
internal sealed record UserView(
    UserBaseline Baseline,
    PeerBaseline Peers,
    DirectoryUser? Directory,
    bool IsAdmin,
    DayProfile Profile,
    LocalTime Time,
    HourRarity Hour,
    double OddHourRecordsToday,
    IReadOnlyList<string> DayEvidence,
    IReadOnlyList<string> OddEvidence);
