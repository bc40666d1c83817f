using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Admin;

internal sealed partial class AdminOperations
{
    public async Task<AdminProblem?> CreateTeamAsync(AdminGuard guard, TeamBody body, CancellationToken cancellationToken)
    {
        if (Identifier(body.Id, "id") is { } badId)
        {
            return badId;
        }

        if (string.IsNullOrWhiteSpace(body.Name))
        {
            return AdminProblem.Invalid("name", "name is required.");
        }

        if (body.BusinessUnit is null || guard.Snapshot.BusinessUnitIndex(body.BusinessUnit) < 0)
        {
            return AdminProblem.Invalid("business_unit", body.BusinessUnit is null ? "business_unit is required." : $"unknown business unit '{body.BusinessUnit}'.");
        }

        if (guard.Require(SystemEntities.Team, CrmAction.Create, body.BusinessUnit) is { } denied)
        {
            return denied;
        }

        if (body.Name.Trim().Length > MaxNameLength)
        {
            return AdminProblem.Invalid("name", $"name is longer than {MaxNameLength} characters.");
        }

        if (guard.Snapshot.TeamIndex(body.Id!) >= 0)
        {
            return Field(StatusCodes.Status409Conflict, "id", $"A team with id '{body.Id}' already exists.");
        }

        if (NameTaken(guard.Snapshot, body.Name, null) is { } taken)
        {
            return taken;
        }

        var (roles, problem) = Roles(guard, body.Roles ?? [], "roles");
        if (problem is not null)
        {
            return problem;
        }

        // Members given at creation pass the same checks as members added later (they receive the team's roles).
        var (members, badMember) = Members(guard, body.Members ?? [], "members", roles, []);
        if (badMember is not null)
        {
            return badMember;
        }

        return await changes.ApplyAsync(guard.Actor, context =>
        {
            context.Store.Teams.Add(new TeamRecord { Id = body.Id!, Name = body.Name!.Trim(), BusinessUnitId = body.BusinessUnit });
            context.Store.TeamRoles.AddRange(roles.Select(r => new TeamRoleRecord { TeamId = body.Id!, RoleId = r.Id }));
            context.Store.TeamMembers.AddRange(members.Select(m => new TeamMemberRecord { TeamId = body.Id!, UserId = m.Id }));
            context.Audit(new AuditChange("team.create", "team", body.Id!, body.Name!.Trim(), null,
                new { name = body.Name.Trim(), business_unit = body.BusinessUnit, roles = roles.Select(r => r.Name), members = members.Select(m => m.UserName) }));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);
    }

    /// <summary>Renames a team: update on team covering its unit; names stay unique; If-Match / version checks the copy edited.</summary>
    public async Task<AdminProblem?> RenameTeamAsync(AdminGuard guard, string teamId, TeamBody body, CancellationToken cancellationToken)
    {
        if (Team(guard, teamId, CrmAction.Update).Problem is { } refused)
        {
            return refused;
        }

        var name = body.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameLength)
        {
            return AdminProblem.Invalid("name", $"name is required (at most {MaxNameLength} characters).");
        }

        if (NameTaken(guard.Snapshot, name, teamId) is { } taken)
        {
            return taken;
        }

        return await changes.ApplyAsync(guard.Actor, async context =>
        {
            var (record, stale) = await EditedTeamAsync(context, teamId, body.Version, cancellationToken);
            if (stale is not null)
            {
                return stale;
            }

            var before = record!.Name;
            record.Name = name;
            context.Audit(new AuditChange("team.update", "team", teamId, name, new { name = before }, new { name }));
            return null;
        }, cancellationToken);
    }

    /// <summary>Replaces the team's members with <paramref name="wanted"/> (user ids): the difference is added and removed.</summary>
    public Task<AdminProblem?> SetTeamMembersAsync(AdminGuard guard, string teamId, IReadOnlyList<string> wanted, int? version, CancellationToken cancellationToken)
    {
        var snapshot = guard.Snapshot;
        var (team, refused) = Team(guard, teamId, CrmAction.Assign);
        if (refused is not null)
        {
            return Task.FromResult<AdminProblem?>(refused);
        }

        var current = team!.Members.Select(m => snapshot.Users[m].Id).ToList();
        return ChangeTeamMembersAsync(guard, teamId, [.. wanted.Where(w => !current.Contains(w))], [.. current.Where(c => !wanted.Contains(c))], version, "members",
            wanted, cancellationToken);
    }

    /// <summary>
    /// Adds and removes members of a team in one audited change (<c>team.members</c>, before and after). The admin needs
    /// assign on the team covering its unit; every person added or removed must be a user the admin may view (anyone else is
    /// "unknown", so the answer does not confirm they exist) and assign, and never the admin (a membership gives roles:
    /// nobody changes their own). A new member receives the team's roles and field security profiles, so the admin must hold
    /// each of them (Dynamics 365: nobody grants what they do not hold).
    /// </summary>
    public async Task<AdminProblem?> ChangeTeamMembersAsync(AdminGuard guard, string teamId, IReadOnlyList<string> add, IReadOnlyList<string> remove, int? version, string field,
        IReadOnlyList<string>? named, CancellationToken cancellationToken)
    {
        var snapshot = guard.Snapshot;
        var (found, refused) = Team(guard, teamId, CrmAction.Assign);
        if (found is not { } team)
        {
            return refused;
        }

        // Problems name the position in the body the caller sent (members[i]) or the path's user.
        string FieldOf(string id) => named is null ? field : $"{field}[{Math.Max(0, named.ToList().IndexOf(id))}]";
        var (added, addProblem) = Members(guard, add, field, [.. team.Roles.Select(r => snapshot.Roles[r])], [.. team.Profiles.Select(p => snapshot.Profiles[p])], FieldOf);
        if (addProblem is not null)
        {
            return addProblem;
        }

        var (removed, removeProblem) = Members(guard, remove, field, [], [], FieldOf);
        if (removeProblem is not null)
        {
            return removeProblem;
        }

        var members = team.Members.Select(m => snapshot.Users[m]).ToList();
        added = [.. added.Where(a => !members.Contains(a))];
        removed = [.. removed.Where(members.Contains)];
        return await changes.ApplyAsync(guard.Actor, async context =>
        {
            if ((await EditedTeamAsync(context, teamId, version, cancellationToken)).Problem is { } stale)
            {
                return stale;
            }

            var removedIds = removed.Select(r => r.Id).ToList();
            await context.Store.TeamMembers.Where(m => m.TeamId == teamId && removedIds.Contains(m.UserId)).ExecuteDeleteAsync(cancellationToken);
            context.Store.TeamMembers.AddRange(added.Select(a => new TeamMemberRecord { TeamId = teamId, UserId = a.Id }));
            var after = members.Where(m => !removed.Contains(m)).Concat(added).Select(m => m.UserName).Order(StringComparer.Ordinal);
            context.Audit(new AuditChange("team.members", "team", teamId, team.Name,
                new { members = members.Select(m => m.UserName).Order(StringComparer.Ordinal) }, new { members = after }, AdminEventActions.Assign,
                added.Count + removed.Count == 1 ? added.Concat(removed).Single().Id : null));
            return null;
        }, cancellationToken);
    }

    /// <summary>The users named, each one the caller may view and assign and not the caller, holding what they would receive.</summary>
    private static (List<UserInfo> Users, AdminProblem? Problem) Members(AdminGuard guard, IReadOnlyList<string> ids, string field, IReadOnlyList<RoleInfo> roles,
        IReadOnlyList<FieldProfileInfo> profiles, Func<string, string>? fieldOf = null)
    {
        var snapshot = guard.Snapshot;
        var users = new List<UserInfo>();
        foreach (var (id, i) in ids.Select((id, i) => (id, i)))
        {
            var name = fieldOf?.Invoke(id) ?? $"{field}[{i}]";
            var user = snapshot.User(id);

            // OWASP ASVS 4.0.3 V4.2.1: someone outside the caller's reach is unknown to them, not "forbidden" (which confirms them).
            if (user is null || !guard.Covers(SystemEntities.User, CrmAction.Read, snapshot.BusinessUnits[user.BusinessUnit].Id))
            {
                return ([], AdminProblem.Invalid(name, $"unknown user '{id}' (a member must be a user you may view)."));
            }

            var refused = guard.Require(SystemEntities.User, CrmAction.Assign, snapshot.BusinessUnits[user.BusinessUnit].Id)
                ?? guard.RequireNotSelf(id, "team memberships")
                ?? roles.Select(r => guard.RequireHolds(r)).FirstOrDefault(p => p is not null)
                ?? profiles.Select(p => guard.RequireHolds(p)).FirstOrDefault(p => p is not null);
            if (refused is not null)
            {
                return ([], refused);
            }

            if (!users.Contains(user))
            {
                users.Add(user);
            }
        }

        return (users, null);
    }

    /// <summary>
    /// The team, when the caller may <paramref name="action"/> it: the right on team at a depth covering the team's business
    /// unit (deny by default); otherwise the problem (404 for an unknown team, 403 naming the unit).
    /// </summary>
    private static (TeamInfo? Team, AdminProblem? Problem) Team(AdminGuard guard, string teamId, CrmAction action)
    {
        var snapshot = guard.Snapshot;
        var index = snapshot.TeamIndex(teamId);
        if (index < 0)
        {
            return (null, AdminProblem.NotFound("team", teamId));
        }

        var team = snapshot.Teams[index];
        return guard.Require(SystemEntities.Team, action, snapshot.BusinessUnits[team.BusinessUnit].Id) is { } denied ? (null, denied) : (team, null);
    }

    /// <summary>
    /// Inside a change: the team's row, when <paramref name="version"/> (If-Match) is its current version or not given
    /// (RFC 9110 §13.1.1), with its version moved on; otherwise 409 naming who changed it last.
    /// </summary>
    private static async Task<(TeamRecord? Record, AdminProblem? Problem)> EditedTeamAsync(ChangeContext context, string teamId, int? version, CancellationToken cancellationToken)
    {
        var record = await context.Store.Teams.SingleAsync(t => t.Id == teamId, cancellationToken);
        if (await StaleAsync(context, "team", teamId, record.Name, record.Version, version, cancellationToken) is { } stale)
        {
            return (null, stale);
        }

        record.Version++;
        return (record, null);
    }

    private static AdminProblem? NameTaken(AuthorizationSnapshot snapshot, string name, string? except) =>
        snapshot.Teams.FirstOrDefault(t => t.Id != except && string.Equals(t.Name, name.Trim(), StringComparison.OrdinalIgnoreCase)) is { } other
            ? Field(StatusCodes.Status409Conflict, "name", $"The team '{other.Name}' ({other.Id}) already has that name; team names are unique.")
            : null;

    public static TeamView View(AuthorizationSnapshot snapshot, TeamInfo team, int version) =>
        new(team.Id, team.Name, snapshot.BusinessUnits[team.BusinessUnit].Id, [.. team.Members.Select(m => snapshot.Users[m].Id)],
            [.. team.Roles.Select(r => snapshot.Roles[r].Id)], version, [.. team.Profiles.Select(p => snapshot.Profiles[p].Id)]);

    public async Task<AdminProblem?> SetTeamRolesAsync(AdminGuard guard, string teamId, TeamBody body, CancellationToken cancellationToken)
    {
        var snapshot = guard.Snapshot;
        var (found, refused) = Team(guard, teamId, CrmAction.Assign);
        if (found is not { } team)
        {
            return refused;
        }

        if (team.Members.Contains(guard.Caller))
        {
            return AdminProblem.Forbidden($"{guard.Actor.Name} is a member of team '{team.Name}' and cannot change its roles (that would change their own roles).");
        }

        var (roles, problem) = Roles(guard, body.Roles ?? [], "roles", team.Roles);
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

            await context.Store.TeamRoles.Where(r => r.TeamId == teamId).ExecuteDeleteAsync(cancellationToken);
            context.Store.TeamRoles.AddRange(roles.Select(r => new TeamRoleRecord { TeamId = teamId, RoleId = r.Id }));
            context.Audit(new AuditChange("team.roles", "team", teamId, team.Name,
                new { roles = team.Roles.Select(r => snapshot.Roles[r].Name) }, new { roles = roles.Select(r => r.Name) }, AdminEventActions.Assign));
            return null;
        }, cancellationToken);
    }

    public async Task<AdminProblem?> DeleteTeamAsync(AdminGuard guard, string teamId, CancellationToken cancellationToken)
    {
        var snapshot = guard.Snapshot;
        var (found, refused) = Team(guard, teamId, CrmAction.Delete);
        if (found is not { } team)
        {
            return refused;
        }

        return await changes.ApplyAsync(guard.Actor, async context =>
        {
            var before = new { name = team.Name, members = team.Members.Select(m => snapshot.Users[m].UserName), roles = team.Roles.Select(r => snapshot.Roles[r].Name) };
            await context.Store.TeamMembers.Where(m => m.TeamId == teamId).ExecuteDeleteAsync(cancellationToken);
            await context.Store.TeamRoles.Where(m => m.TeamId == teamId).ExecuteDeleteAsync(cancellationToken);
            await context.Store.TeamFieldProfiles.Where(m => m.TeamId == teamId).ExecuteDeleteAsync(cancellationToken);
            await context.Store.Shares.Where(s => s.PrincipalKind == "team" && s.PrincipalId == teamId).ExecuteDeleteAsync(cancellationToken);
            await context.Store.Teams.Where(t => t.Id == teamId).ExecuteDeleteAsync(cancellationToken);
            context.Audit(new AuditChange("team.delete", "team", teamId, team.Name, before, null));
            return null;
        }, cancellationToken);
    }
}
