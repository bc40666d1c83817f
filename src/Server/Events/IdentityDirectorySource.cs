using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.Identity.Contracts;

namespace CrmSecurity.Server.Events;

/// <summary>
/// The analyzer's directory from Identity's people: every user with their business unit (as department), roles
/// (direct and through teams; the first role's name as title), manager, time zone and hire and termination dates, read
/// again when the model version changes. Until the model is loaded the directory is empty.
/// </summary>
internal sealed class IdentityDirectorySource(IPeopleDirectory people) : IDirectorySource
{
    private DirectorySnapshot? _cached;

    public DirectorySnapshot Current
    {
        get
        {
            var current = people.Current;
            if (ReferenceEquals(current, PeopleSnapshot.Empty))
            {
                return DirectorySnapshot.Empty;
            }

            var cached = Volatile.Read(ref _cached);
            if (cached is not null && cached.Version == current.Version)
            {
                return cached;
            }

            var built = Build(current);
            Volatile.Write(ref _cached, built);
            return built;
        }
    }

    internal static DirectorySnapshot Build(PeopleSnapshot people) => new(people.Version, [.. people.People.Select(person => new DirectoryEntry
    {
        UserId = person.UserId,
        UserName = person.UserName,
        Department = person.BusinessUnitName,
        Title = person.Roles.Count > 0 ? person.Roles[0].Name : "",
        Roles = [.. person.Roles.Select(role => role.Id)],
        BusinessUnit = person.BusinessUnitId,
        Manager = person.ManagerId,
        TimeZone = person.TimeZone,
        Hired = person.Hired,
        Terminated = person.Terminated,
    })]);
}
