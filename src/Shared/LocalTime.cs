using System.Globalization;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Html;

namespace CrmSecurity.Shared;

// How every page shows a time a person reads: in the person's own time zone (their OpenID Connect zoneinfo, OpenID Connect
// Core §5.1), inside <time datetime="...Z"> with the UTC time as its title, so hovering shows UTC and machines read the
// exact instant. A linked source file compiled into each module that has pages (internal there), so no module references
// another and the pages of both look the same.
internal static class LocalTime
{
    // Minutes, for lists and tables.
    public const string Minutes = "ddd d MMM yyyy, HH:mm";

    // Seconds, where order within a minute matters (the audit trail).
    public const string Seconds = "ddd d MMM yyyy, HH:mm:ss";

    // The person's zone: an IANA id this machine knows, UTC otherwise, so a page never guesses from the browser or the
    // server's own zone.
    public static TimeZoneInfo Zone(string? zoneInfo) =>
        !string.IsNullOrEmpty(zoneInfo) && TimeZoneInfo.TryFindSystemTimeZoneById(zoneInfo, out var zone) ? zone : TimeZoneInfo.Utc;

    // <time datetime="2026-12-07T02:10:00Z" title="2026-12-07 02:10:00 UTC">Mon 7 Dec 2026, 03:10</time>
    public static IHtmlContent Html(DateTimeOffset time, TimeZoneInfo zone, string format = Minutes)
    {
        var utc = time.ToUniversalTime();
        var local = TimeZoneInfo.ConvertTime(time, zone);
        var encoder = HtmlEncoder.Default;
        return new HtmlString(
            $"<time datetime=\"{utc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\""
            + $" title=\"{utc.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC\">"
            + $"{encoder.Encode(local.ToString(format, CultureInfo.InvariantCulture))}</time>");
    }

    // The zone's name for a column header or a label: "Europe/Berlin".
    public static string Name(TimeZoneInfo zone) => zone == TimeZoneInfo.Utc ? "UTC" : zone.Id;
}
