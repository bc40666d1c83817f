using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>The <c>account_takeover</c> section of the policy.</summary>
internal sealed record TakeoverPolicy
{
    /// <summary>Speed between two places above which nobody travelled it (an airliner cruises at about 900 km/h).</summary>
    public double MaxKmPerHour { get; init; } = 1000;

    /// <summary>Distance between country centres below which a change of country is never impossible travel: neighbours' centres lie 500-900 km apart while their border towns are minutes apart.</summary>
    public double MinKm { get; init; } = 1000;

    /// <summary>
    /// A country the user worked from on at least this many earlier days is familiar: a jump between two familiar countries
    /// is a VPN or a corporate egress, not a second person, and is not reported.
    /// </summary>
    public int FamiliarDays { get; init; } = 3;

    /// <summary>
    /// A stay in a country the account never used is judged as a possible takeover when it begins at most this long after
    /// activity from a familiar country: a traveller arrives after a journey, a stolen session is used the same night.
    /// </summary>
    public TimeSpan HomeWithin { get; init; } = TimeSpan.FromHours(16);

    /// <summary>Back in the familiar country within this long after such a stay: the two places were used at once.</summary>
    public TimeSpan ReturnWithin { get; init; } = TimeSpan.FromHours(12);

    internal static TakeoverPolicy Read(PolicySection s)
    {
        var d = new TakeoverPolicy();
        var result = new TakeoverPolicy
        {
            MaxKmPerHour = s.Number("max_km_per_hour", d.MaxKmPerHour, 100, 100_000),
            MinKm = s.Number("min_km", d.MinKm, 0, 20_000),
            FamiliarDays = s.Integer("familiar_days", d.FamiliarDays, 1, 365),
            HomeWithin = TimeSpan.FromHours(s.Number("home_within_hours", d.HomeWithin.TotalHours, 1, 72)),
            ReturnWithin = TimeSpan.FromHours(s.Number("return_within_hours", d.ReturnWithin.TotalHours, 1, 72)),
        };
        s.RejectUnknown();
        return result;
    }
}
