using CrmSecurity.Identity.Demo;

namespace CrmSecurity.Identity.Contracts;

/// <summary>
/// The demo mode's people and clients (<c>Identity:DemoMode</c>), for the host's demo access history and for its refusal
/// to start in Production on a database that holds the demo clients (whose secrets are published).
/// </summary>
public static class IdentityDemo
{
    /// <summary>The demo's business-unit user administrator role (wade's).</summary>
    public const string WestAdminRole = DemoSeeder.WestAdminRole;

    /// <summary>The demo's people, in the order the demo lists them.</summary>
    public static IReadOnlyList<DemoPerson> People { get; } =
        [.. DemoSeeder.Users.Select(user => new DemoPerson(DemoSeeder.DemoUserId(user.UserName), user.UserName, user.Zone, user.Roles))];

    /// <summary>The client ids of the demo's clients.</summary>
    public static IReadOnlyList<string> ClientIds { get; } = [.. DemoSeeder.Clients.Select(client => client.ClientId)];
}

/// <summary>One demo person.</summary>
/// <param name="UserId">The id the demo gives them (the same on every installation).</param>
/// <param name="UserName">The sign-in name.</param>
/// <param name="TimeZone">Their IANA time zone.</param>
/// <param name="Roles">Their roles' ids.</param>
public sealed record DemoPerson(string UserId, string UserName, string TimeZone, IReadOnlyList<string> Roles);

/// <summary>Whether demo data was seeded by this start of the service (other demo data, such as access history, follows only then).</summary>
public interface IDemoSeeding
{
    /// <summary>True when this start seeded an empty database.</summary>
    bool SeededThisStart { get; }
}
