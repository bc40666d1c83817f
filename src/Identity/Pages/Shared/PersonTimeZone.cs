namespace CrmSecurity.Identity.Pages.Shared;

/// <summary>
/// The time zone a person's pages show times in: their OpenID Connect <c>zoneinfo</c> (an IANA id) when this machine
/// knows it, UTC otherwise, so a page never guesses from the browser or the server's own zone. The same rule as the
/// review pages' (<see cref="CrmSecurity.Shared.LocalTime"/>, shared by both modules).
/// </summary>
internal static class PersonTimeZone
{
    public static TimeZoneInfo Of(string? zoneInfo) => CrmSecurity.Shared.LocalTime.Zone(zoneInfo);
}
