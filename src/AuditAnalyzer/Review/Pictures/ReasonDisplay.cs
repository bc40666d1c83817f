using System.Globalization;
using System.Text.RegularExpressions;
using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Findings;

namespace CrmSecurity.AuditAnalyzer.Review.Pictures;

/// <summary>
/// "Typical" and "actual" of a reason in words a reviewer can weigh. Most reasons carry two quantities (records a day);
/// an odd-hours reason carries a share of active days and a flag ("typical 0, actual 1"), which says nothing on its
/// own: it is shown as how often the user is active at that hour, their usual hours (from the heat map), and the hour
/// they were active.
/// </summary>
internal static partial class ReasonDisplay
{
    public static (string Typical, string Actual) Of(Reason reason, (int From, int To)? usualHours)
    {
        if (reason.Code == ReasonCodes.RareHour)
        {
            var share = reason.Typical is { } s ? $"active at this hour on {Numbers.Percent(s)} of their active days" : "hour not seen before";
            var usual = usualHours is { } u ? $"; usual hours {PictureText.Hour(u.From)}–{PictureText.Hour((u.To + 1) % 24)} local" : "";
            var actual = Hour().Match(reason.Text) is { Success: true } m
                ? $"active {m.Groups["day"].Value} {m.Groups["hour"].Value}:00–{m.Groups["hour"].Value}:59 {m.Groups["where"].Value}".TrimEnd()
                : "active at this hour";
            return (share + usual, actual);
        }

        return (Number(reason.Typical), Number(reason.Actual));
    }

    private static string Number(double? value) => value is { } v ? v.ToString("#,0.###", CultureInfo.InvariantCulture) : "–";

    // The detector writes "active Sunday 02:00-02:59 local" or "... local (in FR's local time)".
    [GeneratedRegex(@"active (?<day>[A-Z][a-z]+) (?<hour>\d\d):00-\d\d:59 (?<where>local(?: \(in [^)]*\))?)", RegexOptions.CultureInvariant, 200)]
    private static partial Regex Hour();
}
