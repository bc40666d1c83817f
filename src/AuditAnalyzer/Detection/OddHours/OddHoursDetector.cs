using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Odd hours: how rare this hour of the week is for the user, in their local time (or, when travelling,
/// in the local time of the country they are in). Night-shift workers' nights are their normal hours.
/// The data touched at odd hours drives most of the score; a sign-in alone stays low.
/// </summary>
internal sealed class OddHoursDetector : IDetector
{
    public static OddHoursDetector Instance { get; } = new();

    public string Name => DetectorNames.OddHours;

    /// <summary>ECS event.category: odd hours are about when a session is active.</summary>
    public string EcsCategory => "session";

    public IReadOnlyList<string> Codes { get; } = [ReasonCodes.RareHour];

    public void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        var hour = view.Hour;
        if (!hour.Rare || !e.Succeeded || e.Action is AccessAction.Logout or AccessAction.LoginFailed)
        {
            return;
        }

        var rules = policy.OddHours;
        // Squared, so an hour just under the rarity limit (an early start, a long evening) adds little and
        // an hour never seen adds all: the score follows how far the hour is from the user's habits.
        var rarity = Math.Pow(1 - Math.Min(1, hour.Share / rules.MaxShare), 2);
        // Data touched at odd hours is measured in hours of the user's typical work: a typical day's records
        // spread over their typical active hours per day.
        var typicalDay = Math.Max(50, view.Profile.Learning ? view.Profile.PeerReadMedian : view.Profile.Read.Median);
        var typicalHour = typicalDay / Math.Max(1, view.Profile.ActiveHoursPerDay);
        var hoursOfWork = view.OddHourRecordsToday / typicalHour;
        var dataPart = hoursOfWork / (hoursOfWork + rules.HalfScoreHoursOfWork);
        var score = 25 + (rarity * (15 + (45 * dataPart)));
        if (view.OddHourRecordsToday <= 0)
        {
            score = Math.Min(score, rules.LoginOnlyMaxScore);
        }

        if (hour.FromPeers)
        {
            score *= 0.8;
        }

        var who = hour.FromPeers ? $"peers ({view.Peers.Group}, learning mode)" : "this user";
        var where = hour.Travelling ? $" (in {hour.TravelCountry}'s local time)" : "";
        var touched = view.OddHourRecordsToday > 0
            ? $"; {Numbers.N(view.OddHourRecordsToday)} records touched at odd hours today, {hoursOfWork:0.#} hours of typical work ({Numbers.N(typicalHour)} records an hour)"
            : "; no data touched";
        DetectorSignals.Add(signals, view with { DayEvidence = view.OddEvidence }, e, ReasonCodes.RareHour, score * policy.Weight(ReasonCodes.RareHour),
            $"active {hour.Weekday} {hour.Hour:00}:00-{hour.Hour:00}:59 local{where}: typical share of active days at this hour for {who} {Numbers.Percent(hour.Share)}, actual active{touched}",
            hour.Share, 1);
    }
}

/// <summary>The detector's name in findings.</summary>
internal static partial class DetectorNames
{
    public const string OddHours = "odd_hours";
}

/// <summary>The detector's stable reason codes.</summary>
internal static partial class ReasonCodes
{
    public const string RareHour = "odd_hours.rare_hour";
}
