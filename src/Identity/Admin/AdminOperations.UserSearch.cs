using System.Globalization;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// A search of the users list, as the admin API's query string and the users page state it: text matched (case-insensitive,
/// anywhere) in the user name, display name or e-mail address; people or application users; a status; a sort column and
/// order; and a window (offset, limit).
/// </summary>
internal sealed record UserQuery(string? Text, string Kind, string Status, string Sort, bool Descending, int Offset, int Limit)
{
    public const int DefaultLimit = 100;

    public const int MaxLimit = 500;

    public const int MaxTextLength = 256;

    public static readonly string[] Kinds = ["people", "applications", "all"];

    public static readonly string[] Statuses = ["any", "active", "disabled", "locked"];

    public static readonly string[] Sorts = ["user_name", "display_name", "email", "business_unit"];

    public static readonly string[] Orders = ["asc", "desc"];

    public static UserQuery Default { get; } = new(null, "all", "any", "user_name", false, 0, DefaultLimit);

    /// <summary>Reads the query values (null when absent); a bad value is a problem naming the parameter and what it may be.</summary>
    public static (UserQuery? Query, AdminProblem? Problem) Parse(Func<string, string?> value, string defaultKind = "all", int defaultLimit = DefaultLimit)
    {
        var text = value("q")?.Trim();
        if (text is { Length: > MaxTextLength })
        {
            return (null, AdminProblem.Invalid("q", $"q is longer than {MaxTextLength} characters."));
        }

        var kind = Pick(value("kind"), Kinds, defaultKind);
        var status = Pick(value("status"), Statuses, "any");
        var sort = Pick(value("sort"), Sorts, "user_name");
        var order = Pick(value("order"), Orders, "asc");
        foreach (var (name, picked, allowed) in new (string, string?, string[])[] { ("kind", kind, Kinds), ("status", status, Statuses), ("sort", sort, Sorts), ("order", order, Orders) })
        {
            if (picked is null)
            {
                return (null, AdminProblem.Invalid(name, $"{name} '{value(name)}' is not one of {string.Join(", ", allowed)}."));
            }
        }

        var (offset, badOffset) = Number(value("offset"), "offset", 0, 0, int.MaxValue);
        var (limit, badLimit) = Number(value("limit"), "limit", defaultLimit, 1, MaxLimit);
        if ((badOffset ?? badLimit) is { } bad)
        {
            return (null, bad);
        }

        return (new UserQuery(string.IsNullOrEmpty(text) ? null : text, kind!, status!, sort!, order == "desc", offset, limit), null);

        static string? Pick(string? given, string[] allowed, string fallback) =>
            string.IsNullOrWhiteSpace(given) ? fallback : allowed.FirstOrDefault(a => string.Equals(a, given.Trim(), StringComparison.OrdinalIgnoreCase));

        static (int Value, AdminProblem? Problem) Number(string? given, string name, int fallback, int min, int max) =>
            string.IsNullOrWhiteSpace(given) ? (fallback, null)
            : int.TryParse(given, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max ? (n, null)
            : (0, AdminProblem.Invalid(name, $"{name} '{given}' is not a whole number from {min} to {max}."));
    }
}

/// <summary>One window of the users a search matched, and how many it matched in all (only users the caller may view).</summary>
internal sealed record UserPage(IReadOnlyList<UserView> Users, int Total, UserQuery Query)
{
    public int? NextOffset => Query.Offset + Users.Count < Total ? Query.Offset + Users.Count : null;

    public int? PreviousOffset => Query.Offset > 0 ? Math.Max(0, Query.Offset - Query.Limit) : null;
}

internal sealed partial class AdminOperations
{
    /// <summary>
    /// The users list for the admin API and the users page alike: filtered, counted, sorted and windowed by the database,
    /// so a directory of thousands answers one page at a time. Only users in business units where the caller holds read on
    /// system_user are ever matched or counted (OWASP ASVS 4.0.3 V4.2.1): a business-unit admin's search, its total and its
    /// sort order say nothing about anyone outside their reach.
    /// </summary>
    public static async Task<(UserPage? Page, AdminProblem? Problem)> SearchUsersAsync(AdminGuard guard, IdentityStore store, UserQuery query, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.User, CrmAction.Read) is { } denied)
        {
            return (null, denied);
        }

        var snapshot = guard.Snapshot;
        var units = snapshot.BusinessUnits.Where(b => guard.Covers(SystemEntities.User, CrmAction.Read, b.Id)).Select(b => b.Id).ToList();

        // A user without a unit belongs to the root (AdminGuard.Covers).
        var rootCovered = units.Contains(guard.RootId);
        var users = store.Users.AsNoTracking().Where(u => (u.BusinessUnit == null && rootCovered) || (u.BusinessUnit != null && units.Contains(u.BusinessUnit)));

        users = query.Kind switch
        {
            "people" => users.Where(u => u.ApplicationClientId == null),
            "applications" => users.Where(u => u.ApplicationClientId != null),
            _ => users,
        };

        switch (query.Status)
        {
            case "active":
                users = users.Where(u => !u.IsDisabled);
                break;
            case "disabled":
                users = users.Where(u => u.IsDisabled);
                break;
            case "locked":
                // Lockouts are few; SQLite cannot compare the stored DateTimeOffset, so the end is compared here.
                var locked = (await store.Users.AsNoTracking().Where(u => u.LockoutEnd != null).Select(u => new { u.Id, u.LockoutEnd }).ToListAsync(cancellationToken))
                    .Where(u => u.LockoutEnd > now).Select(u => u.Id).ToList();
                users = users.Where(u => locked.Contains(u.Id));
                break;
        }

        if (query.Text is { } text)
        {
            // Identity's normalised columns are upper case (UpperInvariantLookupNormalizer); the display name is upper-cased
            // by the database. Contains is translated with the text as a parameter, so % and _ match themselves.
            var upper = text.ToUpperInvariant();
#pragma warning disable CA1304, CA1311, CA1862 // EF Core translates ToUpper() and Contains to SQL upper() and instr/strpos; the culture overloads do not translate.
            users = users.Where(u => u.NormalizedUserName!.Contains(upper)
                || (u.DisplayName != null && u.DisplayName.ToUpper().Contains(upper))
                || (u.NormalizedEmail != null && u.NormalizedEmail.Contains(upper)));
#pragma warning restore CA1304, CA1311, CA1862
        }

        var total = await users.CountAsync(cancellationToken);
        var unitNames = store.BusinessUnits.AsNoTracking();
        IOrderedQueryable<CrmUser> sorted = (query.Sort, query.Descending) switch
        {
            ("display_name", false) => users.OrderBy(u => u.DisplayName),
            ("display_name", true) => users.OrderByDescending(u => u.DisplayName),
            ("email", false) => users.OrderBy(u => u.NormalizedEmail),
            ("email", true) => users.OrderByDescending(u => u.NormalizedEmail),
            ("business_unit", false) => users.OrderBy(u => unitNames.Where(b => b.Id == u.BusinessUnit).Select(b => b.Name).FirstOrDefault()),
            ("business_unit", true) => users.OrderByDescending(u => unitNames.Where(b => b.Id == u.BusinessUnit).Select(b => b.Name).FirstOrDefault()),
            (_, true) => users.OrderByDescending(u => u.NormalizedUserName),
            _ => users.OrderBy(u => u.NormalizedUserName),
        };

        var window = await sorted.ThenBy(u => u.NormalizedUserName).ThenBy(u => u.Id).Skip(query.Offset).Take(query.Limit).ToListAsync(cancellationToken);
        return (new UserPage([.. window.Select(u => View(snapshot, u, now))], total, query), null);
    }
}
