using System.Globalization;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Account takeover, the parts a log of access events can prove.
/// <list type="bullet">
/// <item><b>Impossible travel</b>: two events of one user from countries further apart than anyone could travel in the
/// time between them mean two people share the account (or one session was stolen). A jump between two countries the user
/// works from regularly is a VPN or a corporate egress, not a second person.</item>
/// <item><b>A new place while the owner sleeps</b>: within hours of work from a familiar country, the account is used from a
/// country it was never used from, far away, at hours the user does not work at home, to search, read or export data. A
/// traveller arrives after a journey (hours without activity, a day in the air) and works local hours; a stolen session is
/// used the same night.</item>
/// <item><b>Back home the next morning</b>: the user is at work in their own country again within hours of that visit: the
/// two places were used at once, which no journey explains.</item>
/// </list>
/// A user in learning mode has no familiar countries yet and is not judged. The visit under way is kept per user in memory
/// (<see cref="Whereabouts.Away"/>): a restart forgets at most one visit.
/// </summary>
internal sealed class TakeoverDetector : IDetector
{
    public static TakeoverDetector Instance { get; } = new();

    public string Name => DetectorNames.Takeover;

    /// <summary>ECS event.category: a stolen credential or session is about authentication.</summary>
    public string EcsCategory => "authentication";

    public IReadOnlyList<string> Codes { get; } = [ReasonCodes.ImpossibleTravel, ReasonCodes.NewPlace, ReasonCodes.RoundTrip];

    public void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        // Only what someone did: a refused sign-in from abroad is a guess at the password, which the account's lockout handles.
        if (!e.Succeeded || e.Action == AccessAction.LoginFailed || e.Country is not { } here || view.Whereabouts is not { Country: { } before } last || view.Profile.Learning)
        {
            return;
        }

        ImpossibleTravel(e, here, before, last, view, policy, signals);
        Visits(e, here, before, last, view, policy, signals);
    }

    private static void ImpossibleTravel(AccessEvent e, string here, string before, Whereabouts last, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        if (Same(here, before) || CountryPlaces.DistanceKm(before, here) is not { } km)
        {
            return;
        }

        var rules = policy.Takeover;
        var familiarBefore = view.Baseline.Countries.GetValueOrDefault(before) >= rules.FamiliarDays;
        var familiarHere = view.Baseline.Countries.GetValueOrDefault(here) >= rules.FamiliarDays;
        var hours = Math.Max(TimeSpan.FromTicks(e.UtcTicks - last.Ticks).TotalHours, 1.0 / 60);
        var speed = km / hours;
        if (km < rules.MinKm || speed <= rules.MaxKmPerHour || (familiarBefore && familiarHere))
        {
            return;
        }

        // At the limit 70 (high: someone else is in the account); the faster, the surer, up to 92.
        var score = ScoreCurve.Over(speed, rules.MaxKmPerHour, 70) * policy.Weight(ReasonCodes.ImpossibleTravel);
        DetectorSignals.Add(signals, view, e, ReasonCodes.ImpossibleTravel, score,
            string.Create(CultureInfo.InvariantCulture,
                $"{AccessActions.Name(e.Action)} from {here} {Gap(e.UtcTicks - last.Ticks)} after activity from {before}: {Numbers.N(km)} km apart, typical at most {Numbers.N(rules.MaxKmPerHour)} km/h (a flight), actual {Numbers.N(speed)} km/h; {here} seen on {view.Baseline.Countries.GetValueOrDefault(here)} earlier days"),
            rules.MaxKmPerHour, Math.Round(speed));
    }

    private static void Visits(AccessEvent e, string here, string before, Whereabouts last, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        var rules = policy.Takeover;
        var visit = last.Away;
        if (visit is not null && (!Same(here, visit.Country) || e.UtcTicks - visit.LastTicks > rules.ReturnWithin.Ticks))
        {
            last.Away = null;
            if (Same(here, visit.Home) && visit.RecordsAtNight > 0 && e.UtcTicks - visit.LastTicks <= rules.ReturnWithin.Ticks)
            {
                RoundTrip(e, visit, view, policy, signals);
            }

            visit = null;
        }

        if (visit is null)
        {
            // A visit begins with the first event from a country never used before, far from a familiar one used hours ago.
            if (Same(here, before)
                || view.Baseline.Countries.GetValueOrDefault(here) > 0
                || view.Baseline.Countries.GetValueOrDefault(before) < rules.FamiliarDays
                || e.UtcTicks - last.Ticks > rules.HomeWithin.Ticks
                || CountryPlaces.DistanceKm(before, here) is not { } km || km < rules.MinKm)
            {
                return;
            }

            visit = last.Away = new Visit(here, before, last.Ticks, e.UtcTicks);
        }

        visit.LastTicks = e.UtcTicks;
        if (!view.Hour.HomeRare || !AccessActions.ReadsData(e.Action))
        {
            return;
        }

        visit.RecordsAtNight += e.RecordCount;
        visit.Exported += e.Action == AccessAction.Export ? e.RecordCount : 0;
        if (visit.Evidence.Count < 20)
        {
            visit.Evidence.Add(e.EventId);
        }

        // Medium from the first search (50), high once it has touched about an hour of the user's typical work (68).
        var score = (50 + (35 * DataPart(visit, view))) * policy.Weight(ReasonCodes.NewPlace);
        var exported = visit.Exported > 0 ? $", {Numbers.N(visit.Exported)} of them exported" : "";
        Add(signals, e, visit, ReasonCodes.NewPlace, score,
            string.Create(CultureInfo.InvariantCulture,
                $"{AccessActions.Name(e.Action)} from {here}, a country this account never used, {Gap(visit.FirstTicks - visit.LeftHomeTicks)} after activity from {visit.Home}, at {view.Hour.Weekday} {view.Time.Hour:00}:00 local, an hour this user does not work at home: {Numbers.N(visit.RecordsAtNight)} records searched, read or listed there so far{exported}"),
            0, visit.RecordsAtNight);
    }

    private static void RoundTrip(AccessEvent e, Visit visit, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        // Back at work at home within hours of a night's use from a new country far away: high (75), up to 90 with data.
        var score = (75 + (15 * DataPart(visit, view))) * policy.Weight(ReasonCodes.RoundTrip);
        Add(signals, e, visit, ReasonCodes.RoundTrip, score,
            string.Create(CultureInfo.InvariantCulture,
                $"{AccessActions.Name(e.Action)} from {visit.Home} {Gap(e.UtcTicks - visit.LastTicks)} after {Gap(visit.LastTicks - visit.FirstTicks)} of use from {visit.Country} (never used before, {Numbers.N(CountryPlaces.DistanceKm(visit.Home, visit.Country) ?? 0)} km away) that began {Gap(visit.FirstTicks - visit.LeftHomeTicks)} after activity from {visit.Home}: typical 0 round trips, actual {Numbers.N(visit.RecordsAtNight)} records touched abroad while the owner does not work"),
            0, visit.RecordsAtNight);
    }

    /// <summary>The records touched in hours of the user's typical work, as a share that is half at one hour.</summary>
    private static double DataPart(Visit visit, in UserView view)
    {
        var typicalDay = Math.Max(50, view.Profile.Read.Median);
        var typicalHour = typicalDay / Math.Max(1, view.Profile.ActiveHoursPerDay);
        var hoursOfWork = (visit.RecordsAtNight + visit.Exported) / typicalHour;
        return hoursOfWork / (hoursOfWork + 1);
    }

    private static void Add(List<Signal> signals, AccessEvent e, Visit visit, string code, double score, string text, double typical, double actual)
    {
        var evidence = new List<string>(visit.Evidence);
        if (!evidence.Contains(e.EventId))
        {
            evidence.Add(e.EventId);
        }

        signals.Add(new Signal(new Reason(code, Math.Round(Math.Min(100, score), 1), text, typical, actual), e.Timestamp, evidence, false));
    }

    private static string Gap(long ticks)
    {
        var hours = TimeSpan.FromTicks(ticks).TotalHours;
        return hours < 1 ? string.Create(CultureInfo.InvariantCulture, $"{Math.Max(1, hours * 60):0} min") : string.Create(CultureInfo.InvariantCulture, $"{hours:0.#} h");
    }

    private static bool Same(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);
}

/// <summary>The detector's name in findings.</summary>
internal static partial class DetectorNames
{
    public const string Takeover = "account_takeover";
}

/// <summary>The detector's reason codes.</summary>
internal static partial class ReasonCodes
{
    /// <summary>Two events further apart than anyone can travel in the time between them.</summary>
    public const string ImpossibleTravel = "account_takeover.impossible_travel";

    /// <summary>Data used from a country the account never used, hours after work from home, at hours the user does not work.</summary>
    public const string NewPlace = "account_takeover.new_place";

    /// <summary>Back at work at home within hours of such a visit: two places at once.</summary>
    public const string RoundTrip = "account_takeover.round_trip";
}
