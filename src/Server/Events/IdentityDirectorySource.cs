using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;

namespace CrmSecurity.Server.Events;

/// <summary>
/// The analyzer's directory from Identity's authorization model: every user with their business unit (as department),
/// roles (direct and through teams; the first role's name as title), manager and time zone. Rebuilt when the model
/// version changes, which every audited admin change does; until the model is loaded the directory is empty.
/// </summary>
/// <remarks>Identity keeps no hire or termination dates: both stay empty, so the analyzer's leaver checks need users.csv.</remarks>
internal sealed class IdentityDirectorySource(AuthorizationModel model) : IDirectorySource
{
    private DirectorySnapshot _cached = DirectorySnapshot.Empty;

    public DirectorySnapshot Current
    {
        get
        {
            if (!model.IsLoaded)
            {
                return DirectorySnapshot.Empty;
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

    internal static DirectorySnapshot Build(AuthorizationSnapshot snapshot) => new(snapshot.Version, [.. snapshot.Users.Select(user =>
    {
        var roles = snapshot.RolesOf(user.Index);
        var unit = snapshot.BusinessUnits.Length > 0 ? snapshot.BusinessUnits[user.BusinessUnit] : null;
        var firstRole = roles.Count > 0 && snapshot.RoleIndex(roles[0]) is var role and >= 0 ? snapshot.Roles[role].Definition.Name : "";
        return new DirectoryEntry
        {
            UserId = user.Id,
            UserName = user.UserName,
            Department = unit?.Name ?? "",
            Title = firstRole,
            Roles = roles,
            BusinessUnit = unit?.Id,
            Manager = user.Manager >= 0 ? snapshot.Users[user.Manager].Id : null,
            TimeZone = user.Definition.ZoneInfo,
        };
    })]);
}
