using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;

namespace CrmSecurity.Identity.Contracts;

/// <summary>
/// The people in Identity's authorization model, for another module that needs to know who works where (the
/// analyzer's peer groups, working hours and manager chains). Rebuilt when the model version changes, which every
/// audited admin change does; empty until the model is loaded.
/// </summary>
public interface IPeopleDirectory
{
    /// <summary>The people as of the latest loaded model version.</summary>
    PeopleSnapshot Current { get; }
}

/// <summary>Everyone in the model at one version.</summary>
/// <param name="Version">The model version this was read from; a new version means something changed.</param>
/// <param name="People">Every user, in the model's order.</param>
public sealed record PeopleSnapshot(long Version, IReadOnlyList<Person> People)
{
    /// <summary>Before the model is loaded.</summary>
    public static PeopleSnapshot Empty { get; } = new(-1, []);
}

/// <summary>
/// One user as the directory shows them, with the hire and termination dates security admins keep on the user (admin API
/// <c>PUT /admin/api/users/{id}/employment</c>), so the analyzer can tell leavers without a separate users.csv.
/// </summary>
/// <param name="UserId">The user's id (the <c>sub</c> of their tokens).</param>
/// <param name="UserName">The sign-in name.</param>
/// <param name="BusinessUnitId">The business unit's id, null when the model has none.</param>
/// <param name="BusinessUnitName">The business unit's name, empty when the model has none.</param>
/// <param name="Roles">The user's roles, direct and through teams, as (id, name).</param>
/// <param name="ManagerId">The manager's user id, null when none.</param>
/// <param name="TimeZone">The user's IANA time zone (<c>zoneinfo</c>), null when not set.</param>
public sealed record Person(
    string UserId, string UserName, string? BusinessUnitId, string BusinessUnitName,
    IReadOnlyList<(string Id, string Name)> Roles, string? ManagerId, string? TimeZone)
{
    /// <summary>The day the person was hired, null when not recorded.</summary>
    public DateOnly? Hired { get; init; }

    /// <summary>The person's last working day, null while employed; access after it is a leaver's.</summary>
    public DateOnly? Terminated { get; init; }
}

/// <summary>The directory read from the loaded <see cref="AuthorizationModel"/>, cached per model version.</summary>
internal sealed class ModelPeopleDirectory(AuthorizationModel model) : IPeopleDirectory
{
    private PeopleSnapshot _cached = PeopleSnapshot.Empty;

    public PeopleSnapshot Current
    {
        get
        {
            if (!model.IsLoaded)
            {
                return PeopleSnapshot.Empty;
            }

            var snapshot = model.Current;
            var cached = Volatile.Read(ref _cached);
            if (cached.Version == snapshot.Version)
            {
                return cached;
            }

            var built = Build(snapshot);
            Volatile.Write(ref _cached, built);
            return built;
        }
    }

    internal static PeopleSnapshot Build(AuthorizationSnapshot snapshot) => new(snapshot.Version, [.. snapshot.Users.Select(user =>
    {
        var unit = snapshot.BusinessUnits.Length > 0 ? snapshot.BusinessUnits[user.BusinessUnit] : null;
        var roles = snapshot.RolesOf(user.Index)
            .Select(id => (id, snapshot.RoleIndex(id) is var role and >= 0 ? snapshot.Roles[role].Definition.Name : ""))
            .ToList();
        return new Person(
            user.Id,
            user.UserName,
            unit?.Id,
            unit?.Name ?? "",
            roles,
            user.Manager >= 0 ? snapshot.Users[user.Manager].Id : null,
            user.Definition.ZoneInfo)
        {
            Hired = user.Definition.Hired,
            Terminated = user.Definition.Terminated,
        };
    })]);
}
