using System.Globalization;
using CrmSecurity.Identity.Authorization.Store;

namespace CrmSecurity.Identity.AuditTrail;

/// <summary>
/// Which audit entries to show: every condition given must hold (exact matches, so a filter never widens by accident).
/// <see cref="After"/> and <see cref="Limit"/> page through the trail in sequence order, which is stable because the trail
/// is append-only: a page once read never shifts when entries are added.
/// </summary>
internal sealed record AuditTrailFilter(
    string? Actor = null,
    string? Action = null,
    string? TargetKind = null,
    string? Target = null,
    DateTimeOffset? From = null,
    DateTimeOffset? To = null,
    long After = 0,
    int Limit = AuditTrailFilter.DefaultLimit)
{
    public const int DefaultLimit = 50;

    public const int MaxLimit = 200;

    /// <summary>The query parameters, as the API and the page name them.</summary>
    public static readonly string[] Parameters = ["actor", "action", "target_kind", "target", "from", "to", "after", "limit"];

    // ISO 8601 dates and date-times; "K" takes Z, an offset, or nothing (then the time is UTC).
    private static readonly string[] TimeFormats =
        ["yyyy-MM-ddK", "yyyy-MM-dd'T'HH:mmK", "yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK"];

    /// <summary>
    /// Reads the filter from query values (null when absent), naming the first bad parameter in a 400. A time without an
    /// offset is UTC unless <paramref name="localZone"/> says whose wall clock it is (the page's date-time pickers).
    /// </summary>
    public static (AuditTrailFilter? Filter, AdminProblem? Problem) Parse(Func<string, string?> value, TimeZoneInfo? localZone = null)
    {
        string? Text(string name) => string.IsNullOrWhiteSpace(value(name)) ? null : value(name)!.Trim();

        foreach (var (name, max) in new[] { ("actor", 450), ("action", 64), ("target_kind", 32), ("target", 450) })
        {
            if (Text(name) is { } text && (text.Length > max || text.Any(char.IsControl)))
            {
                return (null, AdminProblem.Invalid(name, $"{name} must be at most {max} printable characters."));
            }
        }

        var (from, fromProblem) = Time("from", Text("from"), localZone);
        if (fromProblem is not null)
        {
            return (null, fromProblem);
        }

        var (to, toProblem) = Time("to", Text("to"), localZone);
        if (toProblem is not null)
        {
            return (null, toProblem);
        }

        if (from is not null && to is not null && to <= from)
        {
            return (null, AdminProblem.Invalid("to", "to must be later than from."));
        }

        long after = 0;
        if (Text("after") is { } afterText && (!long.TryParse(afterText, NumberStyles.None, CultureInfo.InvariantCulture, out after) || after < 0))
        {
            return (null, AdminProblem.Invalid("after", "after must be a sequence number (0 or more): the next_after of the previous page."));
        }

        var limit = DefaultLimit;
        if (Text("limit") is { } limitText && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
        {
            return (null, AdminProblem.Invalid("limit", $"limit must be a whole number from 1 to {MaxLimit}."));
        }

        return (new AuditTrailFilter(Text("actor"), Text("action"), Text("target_kind"), Text("target"), from, to, after, limit), null);
    }

    private static (DateTimeOffset? Time, AdminProblem? Problem) Time(string name, string? text, TimeZoneInfo? localZone)
    {
        if (text is null)
        {
            return (null, null);
        }

        if (!DateTimeOffset.TryParseExact(text, TimeFormats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
        {
            return (null, AdminProblem.Invalid(name, $"{name} must be an ISO 8601 date or date-time, e.g. 2026-12-06T14:30:00Z."));
        }

        if (localZone is not null && !HasOffset(text))
        {
            var wallClock = DateTime.SpecifyKind(parsed.UtcDateTime, DateTimeKind.Unspecified);
            parsed = new DateTimeOffset(wallClock, localZone.GetUtcOffset(wallClock));
        }

        // Stored timestamps are UTC ticks: compare like with like.
        return (parsed.ToUniversalTime(), null);
    }

    private const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'";

    private static bool HasOffset(string text) =>
        text.EndsWith('Z') || text.EndsWith('z') || (text.Length > 10 && text.AsSpan(10).IndexOfAny('+', '-') >= 0);

    /// <summary>The filter as query parameters (without the paging cursor unless asked), for links and export.</summary>
    public string ToQuery(bool withPaging = false)
    {
        var parts = new List<string>();
        void Add(string name, string? text)
        {
            if (!string.IsNullOrEmpty(text))
            {
                parts.Add($"{name}={Uri.EscapeDataString(text)}");
            }
        }

        Add("actor", Actor);
        Add("action", Action);
        Add("target_kind", TargetKind);
        Add("target", Target);
        Add("from", From?.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture));
        Add("to", To?.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture));
        if (withPaging)
        {
            Add("after", After > 0 ? After.ToString(CultureInfo.InvariantCulture) : null);
            Add("limit", Limit != DefaultLimit ? Limit.ToString(CultureInfo.InvariantCulture) : null);
        }

        return string.Join('&', parts);
    }

    /// <summary>What was asked, for the access event (never a secret: these are names, actions and times).</summary>
    public string Describe() => ToQuery(withPaging: true) is { Length: > 0 } query ? query : "whole trail";
}
