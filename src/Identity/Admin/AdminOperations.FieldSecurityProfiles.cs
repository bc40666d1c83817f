using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Admin;

internal sealed partial class AdminOperations
{
    public async Task<AdminProblem?> UpdateFieldProfileAsync(AdminGuard guard, string profileId, FieldProfileBody body, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.FieldProfile, CrmAction.Update) is { } denied)
        {
            return denied;
        }

        var snapshot = guard.Snapshot;
        var index = snapshot.ProfileIndex(profileId);
        if (index < 0)
        {
            return AdminProblem.NotFound("field security profile", profileId);
        }

        var profile = snapshot.Profiles[index];
        var permissions = profile.Definition.Permissions.ToDictionary(p => (p.Entity, p.Field));
        foreach (var (entity, fields) in body.Permissions ?? [])
        {
            var info = snapshot.Entity(entity);
            if (info is null || info.IsSystem)
            {
                return AdminProblem.Invalid($"permissions.{entity}", $"unknown entity '{entity}'.");
            }

            foreach (var (field, grantName) in fields)
            {
                if (!info.FieldIndex.TryGetValue(field, out var fieldIndex))
                {
                    return AdminProblem.Invalid($"permissions.{entity}.{field}", $"unknown field '{field}' of entity '{entity}'.");
                }

                if (!CrmNames.TryParseFieldGrant(grantName, out var grant))
                {
                    return AdminProblem.Invalid($"permissions.{entity}.{field}", $"unknown grant '{grantName}' (use one of {CrmNames.FieldGrantList}).");
                }

                var fieldInfo = snapshot.FieldTable[fieldIndex];
                if (!fieldInfo.IsSecured)
                {
                    return AdminProblem.Invalid($"permissions.{entity}.{field}", $"'{entity}.{field}' is not a secured field (sensitivity {fieldInfo.Definition.Sensitivity.Name()}): record privileges govern it.");
                }

                var before = permissions.TryGetValue((entity, field), out var old) ? old.Grant : FieldGrant.None;
                if (grant > before && guard.RequireHolds(fieldInfo, grant, $"profile '{profile.Name}'") is { } escalation)
                {
                    return escalation;
                }

                permissions[(entity, field)] = new FieldPermission(entity, field, grant);
            }
        }

        var after = permissions.Values.Where(p => p.Grant != FieldGrant.None).ToList();
        return await changes.ApplyAsync(guard.Actor, async context =>
        {
            var record = await context.Store.FieldProfiles.SingleAsync(p => p.Id == profileId, cancellationToken);
            if (await StaleAsync(context, "field security profile", profileId, record.Name, record.Version, body.Version, cancellationToken) is { } stale)
            {
                return stale;
            }

            record.Name = string.IsNullOrWhiteSpace(body.Name) ? record.Name : body.Name.Trim();
            record.Description = body.Description ?? record.Description;
            record.Version++;
            await context.Store.FieldPermissions.Where(p => p.ProfileId == profileId).ExecuteDeleteAsync(cancellationToken);
            context.Store.FieldPermissions.AddRange(after.Select(p => new FieldPermissionRecord { ProfileId = profileId, Entity = p.Entity, Field = p.Field, Grant = p.Grant.Name() }));
            context.Audit(new AuditChange("field_profile.update", "field_security_profile", profileId, record.Name,
                new { permissions = Grants(profile.Definition.Permissions) }, new { permissions = Grants(after) }));
            return null;
        }, cancellationToken);
    }

    public static FieldProfileView View(FieldProfileInfo profile, int version) => new(profile.Id, profile.Name, profile.Definition.Description, Grants(profile.Definition.Permissions), version);

    private static SortedDictionary<string, SortedDictionary<string, string>> Grants(IEnumerable<FieldPermission> permissions)
    {
        var result = new SortedDictionary<string, SortedDictionary<string, string>>(StringComparer.Ordinal);
        foreach (var permission in permissions.Where(p => p.Grant != FieldGrant.None))
        {
            if (!result.TryGetValue(permission.Entity, out var row))
            {
                result[permission.Entity] = row = new SortedDictionary<string, string>(StringComparer.Ordinal);
            }

            row[permission.Field] = permission.Grant.Name();
        }

        return result;
    }
}
