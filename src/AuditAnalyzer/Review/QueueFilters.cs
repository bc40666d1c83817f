using System.Globalization;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>Reads the queue's filters from query parameters, naming each bad one.</summary>
internal static class QueueFilters
{
    public static QueueFilter Parse(Func<string, string?> get, int maxPageSize, Dictionary<string, string[]> errors)
    {
        var statuses = List(get("status"));
        foreach (var bad in statuses.Where(s => !ReviewStatus.All.Contains(s, StringComparer.Ordinal)))
        {
            errors["status"] = [$"status '{bad}' is not one of {string.Join(", ", ReviewStatus.All)}."];
        }

        var severities = List(get("severity"));
        foreach (var bad in severities.Where(s => !SeverityNames.All.Contains(s, StringComparer.Ordinal)))
        {
            errors["severity"] = [$"severity '{bad}' is not one of {string.Join(", ", SeverityNames.All)}."];
        }

        var user = Blank(get("user"));
        if (user is not null && !Pseudonyms.LooksLikeOne(user))
        {
            // Filtering by a real user id would confirm a guess without an audited reveal.
            errors["user"] = [$"user is a pseudonym as the queue shows it (user- and 8 hex digits); '{user}' is not."];
        }

        var from = Time(get("from"), "from", errors);
        var to = Time(get("to"), "to", errors);
        if (from is not null && to is not null && from >= to)
        {
            errors["to"] = ["to must be after from."];
        }

        var page = Number(get("page"), "page", 1, int.MaxValue / maxPageSize, 1, errors);
        var pageSize = Number(get("page_size"), "page_size", 1, maxPageSize, Math.Min(50, maxPageSize), errors);
        return new QueueFilter(
            statuses.Count == 0 ? ReviewStatus.Open : statuses, severities, Blank(get("detector")), user, Blank(get("assignee")), from, to, page, pageSize);
    }

    private static List<string> List(string? value) =>
        string.IsNullOrWhiteSpace(value) ? [] : [.. value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal)];

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static DateTimeOffset? Time(string? value, string name, Dictionary<string, string[]> errors)
    {
        if (Blank(value) is not { } text)
        {
            return null;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            return time;
        }

        errors[name] = [$"{name} must be an ISO 8601 time such as 2026-11-01T00:00:00Z; '{text}' is not."];
        return null;
    }

    private static int Number(string? value, string name, int min, int max, int fallback, Dictionary<string, string[]> errors)
    {
        if (Blank(value) is not { } text)
        {
            return fallback;
        }

        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max)
        {
            return n;
        }

        errors[name] = [string.Create(CultureInfo.InvariantCulture, $"{name} must be a whole number from {min} to {max}.")];
        return fallback;
    }
}
