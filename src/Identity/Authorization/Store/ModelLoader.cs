using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Policies;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Authorization.Store;

/// <summary>Reads the whole model from the database (within the caller's transaction, if any) into a builder.</summary>
internal static class ModelLoader
{
    public static async Task<AuthorizationModelBuilder> LoadAsync(IdentityStore store, PolicySet policies, CancellationToken cancellationToken)
    {
        var state = await store.ModelState.AsNoTracking().SingleAsync(s => s.Id == ModelStateRecord.SingletonId, cancellationToken);
        var builder = policies.CatalogueBuilder();
        builder.Organization = new OrganizationSettings(state.OrganizationName, state.ManagerHierarchy, state.ManagerHierarchyDepth, "database organisation settings");
        var entityNames = builder.DeclaredEntities.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);

        foreach (var unit in await store.BusinessUnits.AsNoTracking().ToListAsync(cancellationToken))
        {
            builder.AddBusinessUnit(new BusinessUnitDefinition(unit.Id, unit.Name, unit.ParentId, $"database business unit '{unit.Id}'"));
        }

        var privileges = (await store.RolePrivileges.AsNoTracking().ToListAsync(cancellationToken)).ToLookup(p => p.RoleId);
        foreach (var role in await store.CrmRoles.AsNoTracking().ToListAsync(cancellationToken))
        {
            // A privilege on an entity the policy files no longer declare is left out (deny), not fatal: removing
            // an entity from the catalogue must not stop the service. The admin pages show what applies.
            builder.AddRole(new RoleDefinition(role.Id, role.Name, role.Description,
                [.. privileges[role.Id].Where(p => entityNames.Contains(p.Entity)).Select(ToGrant)],
                $"database role '{role.Id}'"));
        }

        var permissions = (await store.FieldPermissions.AsNoTracking().ToListAsync(cancellationToken)).ToLookup(p => p.ProfileId);
        var fields = builder.DeclaredEntities.SelectMany(e => e.Fields.Select(f => (e.Name, f.Name))).ToHashSet();
        foreach (var profile in await store.FieldProfiles.AsNoTracking().ToListAsync(cancellationToken))
        {
            builder.AddFieldProfile(new FieldProfileDefinition(profile.Id, profile.Name, profile.Description,
                [.. permissions[profile.Id].Where(p => fields.Contains((p.Entity, p.Field))).Select(ToPermission)],
                $"database field security profile '{profile.Id}'"));
        }

        var members = (await store.TeamMembers.AsNoTracking().ToListAsync(cancellationToken)).ToLookup(m => m.TeamId, m => m.UserId);
        var teamRoles = (await store.TeamRoles.AsNoTracking().ToListAsync(cancellationToken)).ToLookup(m => m.TeamId, m => m.RoleId);
        var teamProfiles = (await store.TeamFieldProfiles.AsNoTracking().ToListAsync(cancellationToken)).ToLookup(m => m.TeamId, m => m.ProfileId);
        foreach (var team in await store.Teams.AsNoTracking().ToListAsync(cancellationToken))
        {
            builder.AddTeam(new TeamDefinition(team.Id, team.Name, team.BusinessUnitId,
                [.. members[team.Id]], [.. teamRoles[team.Id]], [.. teamProfiles[team.Id]], $"database team '{team.Id}'"));
        }

        var userRoles = (await store.CrmUserRoles.AsNoTracking().ToListAsync(cancellationToken)).ToLookup(a => a.UserId, a => a.RoleId);
        var userProfiles = (await store.UserFieldProfiles.AsNoTracking().ToListAsync(cancellationToken)).ToLookup(a => a.UserId, a => a.ProfileId);
        var users = await store.Users.AsNoTracking()
            .Select(u => new { u.Id, u.UserName, u.DisplayName, u.BusinessUnit, u.ManagerId, u.IsDisabled, u.PermissionModelVersion, u.PermissionFingerprint, u.ApplicationClientId, u.ZoneInfo, u.Hired, u.Terminated })
            .ToListAsync(cancellationToken);
        foreach (var user in users)
        {
            var name = user.UserName ?? user.Id;
            builder.AddUser(
                new UserDefinition(user.Id, name, user.DisplayName ?? name, user.BusinessUnit, user.ManagerId,
                    [.. userRoles[user.Id]], [.. userProfiles[user.Id]], user.IsDisabled, user.PermissionModelVersion, user.ApplicationClientId,
                    $"database user '{name}'", user.ZoneInfo, user.Hired, user.Terminated),
                user.PermissionFingerprint);
        }

        foreach (var share in await store.Shares.AsNoTracking().ToListAsync(cancellationToken))
        {
            if (!entityNames.Contains(share.Entity) || !CrmNames.TryParsePrincipal(share.PrincipalKind, out var kind))
            {
                continue;
            }

            var ownerKind = PrincipalKind.User;
            if (share.RecordOwnerKind is { } ownerKindName && !CrmNames.TryParsePrincipal(ownerKindName, out ownerKind))
            {
                continue;
            }

            builder.AddShare(new ShareDefinition(share.Id, share.Entity, share.RecordId, kind, share.PrincipalId, ParseActions(share.Actions), $"database share '{share.Id}'",
                share.RecordBusinessUnit, share.RecordOwner, ownerKind, share.CreatedBy));
        }

        return builder;
    }

    public static async Task<long> VersionAsync(IdentityStore store, CancellationToken cancellationToken) =>
        await store.ModelState.AsNoTracking().Where(s => s.Id == ModelStateRecord.SingletonId).Select(s => (long?)s.Version).SingleOrDefaultAsync(cancellationToken) ?? 0;

    public static IReadOnlyList<CrmAction> ParseActions(string text) =>
        [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(name => CrmNames.TryParseAction(name, out var action) ? action : (CrmAction?)null)
            .OfType<CrmAction>()];

    private static PrivilegeGrant ToGrant(RolePrivilegeRecord record) => new(record.Entity,
        CrmNames.TryParseAction(record.Action, out var action) ? action : throw new InvalidDataException($"authz_role_privileges: role '{record.RoleId}' has unknown action '{record.Action}'"),
        CrmNames.TryParseDepth(record.Depth, out var depth) ? depth : throw new InvalidDataException($"authz_role_privileges: role '{record.RoleId}' has unknown depth '{record.Depth}'"));

    private static FieldPermission ToPermission(FieldPermissionRecord record) => new(record.Entity, record.Field,
        CrmNames.TryParseFieldGrant(record.Grant, out var grant) ? grant : throw new InvalidDataException($"authz_field_permissions: profile '{record.ProfileId}' has unknown grant '{record.Grant}'"));
}
