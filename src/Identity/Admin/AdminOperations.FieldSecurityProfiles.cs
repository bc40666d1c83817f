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
        if (ParsePermissions(guard, body.Permissions, permissions, $"profile '{profile.Name}'") is { } bad)
        {
            return bad;
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

    /// <summary>
    /// Reads a permissions body (entity -> field -> grant) into <paramref name="permissions"/>, naming the JSON path of the first
    /// bad entry. Only secured fields take grants; a grant above what the profile gave before must be held by the caller.
    /// </summary>
    private static AdminProblem? ParsePermissions(AdminGuard guard, Dictionary<string, Dictionary<string, string>>? body,
        Dictionary<(string Entity, string Field), FieldPermission> permissions, string what)
    {
        var snapshot = guard.Snapshot;
        foreach (var (entity, fields) in body ?? [])
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
                if (grant > before && guard.RequireHolds(fieldInfo, grant, what) is { } escalation)
                {
                    return escalation;
                }

                permissions[(entity, field)] = new FieldPermission(entity, field, grant);
            }
        }

        return null;
    }

    /// <summary>
    /// Creates a field security profile, empty or with grants. Profiles belong to the whole organisation, so this needs
    /// <c>create</c> on field_security_profile at organization depth (red-team finding 10), and nobody puts a grant in it
    /// that they do not hold themselves (Dynamics 365 privilege escalation rule, as for roles).
    /// </summary>
    public async Task<AdminProblem?> CreateFieldProfileAsync(AdminGuard guard, FieldProfileBody body, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.FieldProfile, CrmAction.Create) is { } denied)
        {
            return denied;
        }

        if (Identifier(body.Id, "id") is { } badId)
        {
            return badId;
        }

        if (string.IsNullOrWhiteSpace(body.Name) || body.Name.Trim().Length > MaxNameLength)
        {
            return AdminProblem.Invalid("name", $"name is required (at most {MaxNameLength} characters).");
        }

        var name = body.Name.Trim();
        var snapshot = guard.Snapshot;
        if (snapshot.ProfileIndex(body.Id!) >= 0)
        {
            return Field(StatusCodes.Status409Conflict, "id", $"A field security profile with id '{body.Id}' already exists.");
        }

        if (snapshot.Profiles.Any(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)))
        {
            return Field(StatusCodes.Status409Conflict, "name", $"A field security profile named '{name}' already exists.");
        }

        var permissions = new Dictionary<(string Entity, string Field), FieldPermission>();
        if (ParsePermissions(guard, body.Permissions, permissions, $"profile '{name}'") is { } bad)
        {
            return bad;
        }

        var grants = permissions.Values.Where(p => p.Grant != FieldGrant.None).ToList();
        return await changes.ApplyAsync(guard.Actor, context =>
        {
            context.Store.FieldProfiles.Add(new FieldProfileRecord { Id = body.Id!, Name = name, Description = body.Description?.Trim() ?? "" });
            context.Store.FieldPermissions.AddRange(grants.Select(p => new FieldPermissionRecord { ProfileId = body.Id!, Entity = p.Entity, Field = p.Field, Grant = p.Grant.Name() }));
            context.Audit(new AuditChange("field_profile.create", "field_security_profile", body.Id!, name, null,
                new { name, description = body.Description?.Trim() ?? "", permissions = Grants(grants) }));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);
    }

    /// <summary>
    /// Deletes a field security profile. The rule: a profile nobody holds is deleted at once; a profile still assigned to
    /// users or teams is refused with 409 naming the holders, unless the caller says <paramref name="removeAssignments"/>,
    /// in which case the assignments go with it in the same transaction (as Dynamics 365 does) and the audit entry's
    /// before lists every holder, so the loss of access is on record. Needs <c>delete</c> at organization depth.
    /// </summary>
    public async Task<AdminProblem?> DeleteFieldProfileAsync(AdminGuard guard, string profileId, bool removeAssignments, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.FieldProfile, CrmAction.Delete) is { } denied)
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
        return await changes.ApplyAsync(guard.Actor, async context =>
        {
            // Read inside the transaction (changes are serialised on the model-version row): an assignment made meanwhile is seen.
            var users = await context.Store.UserFieldProfiles.Where(a => a.ProfileId == profileId).Select(a => a.UserId).ToListAsync(cancellationToken);
            var teams = await context.Store.TeamFieldProfiles.Where(a => a.ProfileId == profileId).Select(a => a.TeamId).ToListAsync(cancellationToken);
            var userNames = users.Select(u => snapshot.User(u)?.UserName ?? u).Order(StringComparer.Ordinal).ToList();
            var teamNames = teams.Select(t => snapshot.TeamIndex(t) is var i and >= 0 ? snapshot.Teams[i].Name : t).Order(StringComparer.Ordinal).ToList();
            if ((users.Count > 0 || teams.Count > 0) && !removeAssignments)
            {
                var holders = string.Join(", ", userNames.Concat(teamNames.Select(t => "team " + t)).Take(10));
                var message = $"Field security profile '{profile.Name}' is assigned to {users.Count} user(s) and {teams.Count} team(s) ({holders}). " +
                    "Remove those assignments first, or delete with remove_assignments=true to remove them with the profile.";
                return Field(StatusCodes.Status409Conflict, "remove_assignments", message);
            }

            await context.Store.UserFieldProfiles.Where(a => a.ProfileId == profileId).ExecuteDeleteAsync(cancellationToken);
            await context.Store.TeamFieldProfiles.Where(a => a.ProfileId == profileId).ExecuteDeleteAsync(cancellationToken);
            await context.Store.FieldPermissions.Where(p => p.ProfileId == profileId).ExecuteDeleteAsync(cancellationToken);
            await context.Store.FieldProfiles.Where(p => p.Id == profileId).ExecuteDeleteAsync(cancellationToken);
            context.Audit(new AuditChange("field_profile.delete", "field_security_profile", profileId, profile.Name,
                new { name = profile.Name, permissions = Grants(profile.Definition.Permissions), users = userNames, teams = teamNames }, null));
            return null;
        }, cancellationToken);
    }

    /// <summary>
    /// Replaces the field security profiles a user holds directly. Guarded like roles: <c>assign</c> on system_user at a
    /// depth that covers the user's business unit, never one's own, and every profile added may give no more on any field
    /// than the caller holds (OWASP ASVS 4.0.3 V4.1.3 least privilege; Dynamics 365 privilege escalation rule).
    /// </summary>
    public Task<AdminProblem?> SetUserFieldProfilesAsync(AdminGuard guard, string userId, NamesBody body, CancellationToken cancellationToken) =>
        ChangeUserAsync(guard, userId, CrmAction.Assign, "field security profiles", body.Version, async (context, user, info) =>
        {
            var snapshot = guard.Snapshot;
            var current = info?.DirectProfiles ?? [];
            var (wanted, problem) = Profiles(guard, body.FieldSecurityProfiles ?? [], current);
            if (problem is not null)
            {
                return problem;
            }

            await context.Store.UserFieldProfiles.Where(a => a.UserId == userId).ExecuteDeleteAsync(cancellationToken);
            context.Store.UserFieldProfiles.AddRange(wanted.Select(p => new UserFieldProfileRecord { UserId = userId, ProfileId = p.Id }));
            context.Audit(new AuditChange("user.field_profiles", "system_user", userId, user.UserName!,
                new { field_security_profiles = current.Select(p => snapshot.Profiles[p].Name) },
                new { field_security_profiles = wanted.Select(p => p.Name) }, AdminEventActions.Assign, userId));
            return null;
        }, cancellationToken);

    /// <summary>
    /// Replaces the field security profiles of a team (its members hold them). Guarded like a team's roles: <c>assign</c> on
    /// team covering the team's business unit, not by a member of the team, and no profile added gives more than the caller holds.
    /// </summary>
    public async Task<AdminProblem?> SetTeamFieldProfilesAsync(AdminGuard guard, string teamId, TeamBody body, CancellationToken cancellationToken)
    {
        var snapshot = guard.Snapshot;
        var (found, refused) = Team(guard, teamId, CrmAction.Assign);
        if (found is not { } team)
        {
            return refused;
        }

        if (team.Members.Contains(guard.Caller))
        {
            return AdminProblem.Forbidden($"{guard.Actor.Name} is a member of team '{team.Name}' and cannot change its field security profiles (that would change their own).");
        }

        var (wanted, problem) = Profiles(guard, body.FieldSecurityProfiles ?? [], team.Profiles);
        if (problem is not null)
        {
            return problem;
        }

        return await changes.ApplyAsync(guard.Actor, async context =>
        {
            if ((await EditedTeamAsync(context, teamId, body.Version, cancellationToken)).Problem is { } stale)
            {
                return stale;
            }

            await context.Store.TeamFieldProfiles.Where(a => a.TeamId == teamId).ExecuteDeleteAsync(cancellationToken);
            context.Store.TeamFieldProfiles.AddRange(wanted.Select(p => new TeamFieldProfileRecord { TeamId = teamId, ProfileId = p.Id }));
            context.Audit(new AuditChange("team.field_profiles", "team", teamId, team.Name,
                new { field_security_profiles = team.Profiles.Select(p => snapshot.Profiles[p].Name) },
                new { field_security_profiles = wanted.Select(p => p.Name) }, AdminEventActions.Assign));
            return null;
        }, cancellationToken);
    }

    /// <summary>The profiles named, each one's grants held by the caller unless the holder already has it.</summary>
    private static (List<FieldProfileInfo> Profiles, AdminProblem? Problem) Profiles(AdminGuard guard, List<string> ids, int[] current)
    {
        var profiles = new List<FieldProfileInfo>();
        foreach (var (id, i) in ids.Select((id, i) => (id, i)))
        {
            var index = guard.Snapshot.ProfileIndex(id);
            if (index < 0)
            {
                return ([], AdminProblem.Invalid($"field_security_profiles[{i}]", $"unknown field security profile '{id}'."));
            }

            var profile = guard.Snapshot.Profiles[index];
            if (!current.Contains(index) && guard.RequireHolds(profile) is { } escalation)
            {
                return ([], escalation);
            }

            if (!profiles.Contains(profile))
            {
                profiles.Add(profile);
            }
        }

        return (profiles, null);
    }

    public static FieldProfileView View(AuthorizationSnapshot snapshot, FieldProfileInfo profile, int version) => new(
        profile.Id, profile.Name, profile.Definition.Description, Grants(profile.Definition.Permissions), version,
        [.. snapshot.Users.Where(u => u.DirectProfiles.Contains(profile.Index)).Select(u => u.Id)],
        [.. snapshot.Teams.Where(t => t.Profiles.Contains(profile.Index)).Select(t => t.Id)]);

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
