using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;

namespace CrmSecurity.Identity.Authorization.Decisions;

/// <summary>Turns a snapshot's view of one user into a <see cref="ProfileResponse"/>, made once per user and snapshot.</summary>
internal static class ProfileBuilder
{
    private static readonly ConditionalWeakTable<AuthorizationSnapshot, ConcurrentDictionary<int, ProfileResponse>> Cache = [];

    public static ProfileResponse For(AuthorizationSnapshot snapshot, int user) =>
        Cache.GetValue(snapshot, _ => new ConcurrentDictionary<int, ProfileResponse>()).GetOrAdd(user, index => Build(snapshot, index));

    private static ProfileResponse Build(AuthorizationSnapshot snapshot, int index)
    {
        var user = snapshot.Users[index];
        var access = snapshot.Classes[user.Class];
        var own = snapshot.BusinessUnits[user.BusinessUnit];
        var entities = new Dictionary<string, EntityProfile>(StringComparer.Ordinal);
        foreach (var entity in snapshot.Entities.Where(e => !e.IsSystem))
        {
            var privileges = new Dictionary<string, PrivilegeProfile>(StringComparer.Ordinal);
            foreach (var action in CrmNames.Actions)
            {
                var cell = (entity.Index * CrmNames.ActionCount) + (int)action;
                var depth = user.Disabled ? Depth.None : (Depth)access.Depths[cell];
                if (depth == Depth.None)
                {
                    continue;
                }

                var source = access.Sources[access.DepthSource[cell]];
                privileges[action.Name()] = new PrivilegeProfile
                {
                    Depth = depth.Name(),
                    Role = new NamedRef(snapshot.Roles[source.Role].Id, snapshot.Roles[source.Role].Name),
                    ViaTeam = source.Team >= 0 ? new NamedRef(snapshot.Teams[source.Team].Id, snapshot.Teams[source.Team].Name) : null,
                    BusinessUnits = depth switch
                    {
                        Depth.BusinessUnit => [own.Id],
                        Depth.BusinessUnitAndChildren => [.. snapshot.BusinessUnits.Where(own.Contains).OrderBy(u => u.Pre).Select(u => u.Id)],
                        _ => [],
                    },
                };
            }

            var fields = new Dictionary<string, FieldProfileEntry>(StringComparer.Ordinal);
            var projection = snapshot.Fields(index, entity.Index);
            for (var i = 0; i < entity.FieldCount; i++)
            {
                var field = snapshot.FieldTable[entity.FieldStart + i];
                fields[field.Name] = new FieldProfileEntry(projection[i].Name(), field.Definition.Mask);
            }

            // Only shares bound to a location: the client library matches id and location, as the service does.
            List<SharedRecord> shared = [.. snapshot.Shares.Where(s => s.Entity == entity.Index && s.IsBound
                    && (s.Kind == PrincipalKind.User ? s.Principal == index : Array.IndexOf(user.Teams, s.Principal) >= 0))
                .Select(s => snapshot.SharedRecordOf(s, s.Actions))];
            entities[entity.Name] = new EntityProfile { Privileges = privileges, Fields = fields, SharedRecords = shared };
        }

        return new ProfileResponse
        {
            UserId = user.Id,
            UserName = user.UserName,
            PermVer = user.PermVer,
            ModelVersion = snapshot.Version,
            Disabled = user.Disabled,
            BusinessUnit = own.Id,
            Teams = [.. user.Teams.Select(t => snapshot.Teams[t].Id)],
            Roles = snapshot.RolesOf(index),
            Reports = snapshot.Organization.ManagerHierarchy ? [.. user.Reports.Select(r => snapshot.Users[r].Id)] : [],
            Entities = entities,
        };
    }
}
