using System.Globalization;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Account takeover, the part a log of access events can prove: impossible travel. Two events of one user from countries
/// further apart than anyone could travel in the time between them mean two people share the account (or one session was
/// stolen). A jump between two countries the user works from regularly is a VPN or a corporate egress, not a second
/// person; a user in learning mode has no familiar countries yet and is not judged.
/// </summary>
internal sealed class TakeoverDetector : IDetector
{
    public static TakeoverDetector Instance { get; } = new();

    public string Name => DetectorNames.Takeover;

    /// <summary>ECS event.category: a stolen credential or session is about authentication.</summary>
    public string EcsCategory => "authentication";

    public IReadOnlyList<string> Codes { get; } = [ReasonCodes.ImpossibleTravel];

    public void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        // Only what someone did: a refused sign-in from abroad is a guess at the password, which the account's lockout handles.
        if (!e.Succeeded || e.Action == AccessAction.LoginFailed || e.Country is not { } here || view.Whereabouts is not { Country: { } before } last || view.Profile.Learning
            || string.Equals(here, before, StringComparison.OrdinalIgnoreCase)
            || CountryPlaces.DistanceKm(before, here) is not { } km)
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
        var gap = hours < 1 ? $"{hours * 60:0} min" : $"{hours:0.#} h";
        DetectorSignals.Add(signals, view, e, ReasonCodes.ImpossibleTravel, score,
            string.Create(CultureInfo.InvariantCulture,
                $"{AccessActions.Name(e.Action)} from {here} {gap} after activity from {before}: {Numbers.N(km)} km apart, typical at most {Numbers.N(rules.MaxKmPerHour)} km/h (a flight), actual {Numbers.N(speed)} km/h; {here} seen on {view.Baseline.Countries.GetValueOrDefault(here)} earlier days"),
            rules.MaxKmPerHour, Math.Round(speed));
    }
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
}
