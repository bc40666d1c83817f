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

        if (guard.Snapshot.TeamIndex(body.Id!) >= 0)
        {
            return AdminProblem.Conflict($"A team with id '{body.Id}' already exists.");
        }

        var (roles, problem) = Roles(guard, body.Roles ?? [], "roles");
        if (problem is not null)
        {
            return problem;
        }

        return await changes.ApplyAsync(guard.Actor, context =>
        {
            context.Store.Teams.Add(new TeamRecord { Id = body.Id!, Name = body.Name!.Trim(), BusinessUnitId = body.BusinessUnit });
            context.Store.TeamRoles.AddRange(roles.Select(r => new TeamRoleRecord { TeamId = body.Id!, RoleId = r.Id }));
            context.Audit(new AuditChange("team.create", "team", body.Id!, body.Name!, null, new { name = body.Name, business_unit = body.BusinessUnit, roles = roles.Select(r => r.Name) }));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);
    }

    public async Task<AdminProblem?> SetTeamRolesAsync(AdminGuard guard, string teamId, TeamBody body, CancellationToken cancellationToken)
    {
        var snapshot = guard.Snapshot;
        var index = snapshot.TeamIndex(teamId);
        if (index < 0)
        {
            return AdminProblem.NotFound("team", teamId);
        }

        var team = snapshot.Teams[index];
        var unit = snapshot.BusinessUnits[team.BusinessUnit].Id;
        if (guard.Require(SystemEntities.Team, CrmAction.Assign, unit) is { } denied)
        {
            return denied;
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
            var record = await context.Store.Teams.SingleAsync(t => t.Id == teamId, cancellationToken);
            if (await StaleAsync(context, "team", teamId, record.Name, record.Version, body.Version, cancellationToken) is { } stale)
            {
                return stale;
            }

            record.Version++;
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
        var index = snapshot.TeamIndex(teamId);
        if (index < 0)
        {
            return AdminProblem.NotFound("team", teamId);
        }

        var team = snapshot.Teams[index];
        if (guard.Require(SystemEntities.Team, CrmAction.Delete, snapshot.BusinessUnits[team.BusinessUnit].Id) is { } denied)
        {
            return denied;
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
