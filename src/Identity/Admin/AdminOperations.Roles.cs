using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Admin;

internal sealed partial class AdminOperations
{
    public async Task<AdminProblem?> CreateRoleAsync(AdminGuard guard, RoleBody body, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.Role, CrmAction.Create) is { } denied)
        {
            return denied;
        }

        if (Identifier(body.Id, "id") is { } badId)
        {
            return badId;
        }

        if (string.IsNullOrWhiteSpace(body.Name))
        {
            return AdminProblem.Invalid("name", "name is required.");
        }

        if (guard.Snapshot.RoleIndex(body.Id!) >= 0)
        {
            return AdminProblem.Conflict($"A role with id '{body.Id}' already exists.");
        }

        var (grants, problem) = ParsePrivileges(guard, body.Privileges ?? [], $"role '{body.Name}'");
        if (problem is not null)
        {
            return problem;
        }

        return await changes.ApplyAsync(guard.Actor, context =>
        {
            context.Store.CrmRoles.Add(new RoleRecord { Id = body.Id!, Name = body.Name!.Trim(), Description = body.Description ?? "" });
            context.Store.RolePrivileges.AddRange(grants.Select(g => new RolePrivilegeRecord { RoleId = body.Id!, Entity = g.Entity, Action = g.Action.Name(), Depth = g.Depth.Name() }));
            context.Audit(new AuditChange("role.create", "security_role", body.Id!, body.Name!, null, new { name = body.Name, privileges = Matrix(grants) }));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);
    }

    /// <summary>
    /// A new role with the privileges of <paramref name="sourceId"/> (Dynamics 365 "Copy Role"). It is a create: it needs
    /// create on security_role, and every privilege it copies must be held by the caller (nobody grants what they do not
    /// hold), so cloning cannot hand out more than creating the same role by hand could.
    /// </summary>
    public async Task<AdminProblem?> CloneRoleAsync(AdminGuard guard, string sourceId, RoleBody body, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.Role, CrmAction.Create) is { } denied)
        {
            return denied;
        }

        var index = guard.Snapshot.RoleIndex(sourceId);
        if (index < 0)
        {
            return AdminProblem.NotFound("role", sourceId);
        }

        if (Identifier(body.Id, "id") is { } badId)
        {
            return badId;
        }

        if (string.IsNullOrWhiteSpace(body.Name) || body.Name.Trim().Length > MaxNameLength)
        {
            return AdminProblem.Invalid("name", $"name is required: 1 to {MaxNameLength} characters.");
        }

        if (guard.Snapshot.RoleIndex(body.Id!) >= 0)
        {
            return new AdminProblem(StatusCodes.Status409Conflict, "Conflict", $"A role with id '{body.Id}' already exists.",
                new Dictionary<string, string[]> { ["id"] = [$"role '{body.Id}' already exists."] });
        }

        var source = guard.Snapshot.Roles[index];
        var name = body.Name.Trim();
        if (guard.RequireHolds(source) is { } escalation)
        {
            return escalation;
        }

        var grants = source.Definition.Privileges.Where(g => g.Depth != Depth.None).ToList();
        var description = body.Description ?? source.Definition.Description;
        return await changes.ApplyAsync(guard.Actor, context =>
        {
            context.Store.CrmRoles.Add(new RoleRecord { Id = body.Id!, Name = name, Description = description });
            context.Store.RolePrivileges.AddRange(grants.Select(g => new RolePrivilegeRecord { RoleId = body.Id!, Entity = g.Entity, Action = g.Action.Name(), Depth = g.Depth.Name() }));
            context.Audit(new AuditChange("role.create", "security_role", body.Id!, name, null,
                new { name, description, cloned_from = new { id = source.Id, name = source.Name }, privileges = Matrix(grants) },
                Summary: $"security_role '{name}' cloned from '{source.Name}' ({source.Id}) with {grants.Count} privilege(s)"));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);
    }

    public async Task<AdminProblem?> UpdateRoleAsync(AdminGuard guard, string roleId, RoleBody body, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.Role, CrmAction.Update) is { } denied)
        {
            return denied;
        }

        var index = guard.Snapshot.RoleIndex(roleId);
        if (index < 0)
        {
            return AdminProblem.NotFound("role", roleId);
        }

        if (body.Id is not null && body.Id != roleId)
        {
            return AdminProblem.Invalid("id", $"id '{body.Id}' differs from the role in the path '{roleId}'; ids cannot be changed.");
        }

        var role = guard.Snapshot.Roles[index];
        var name = string.IsNullOrWhiteSpace(body.Name) ? role.Name : body.Name.Trim();
        var (grants, problem) = body.Privileges is null ? (role.Definition.Privileges, null) : ParsePrivileges(guard, body.Privileges, $"role '{name}'", role);
        if (problem is not null)
        {
            return problem;
        }

        return await ReplaceRoleAsync(guard, role, name, body.Description ?? role.Definition.Description, grants, body.Version, "role.update", cancellationToken);
    }

    /// <summary>One cell of the privilege grid (the admin pages change one cell at a time).</summary>
    public async Task<AdminProblem?> SetPrivilegeAsync(AdminGuard guard, string roleId, string entity, string action, string? depth, int? version, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.Role, CrmAction.Update) is { } denied)
        {
            return denied;
        }

        var index = guard.Snapshot.RoleIndex(roleId);
        if (index < 0)
        {
            return AdminProblem.NotFound("role", roleId);
        }

        var role = guard.Snapshot.Roles[index];
        var (cell, problem) = ParsePrivileges(guard, new() { [entity] = new() { [action] = depth ?? "" } }, $"role '{role.Name}'", role);
        if (problem is not null)
        {
            return problem;
        }

        var grant = cell[0];
        var grants = role.Definition.Privileges.Where(p => p.Entity != grant.Entity || p.Action != grant.Action).Append(grant).ToList();
        return await ReplaceRoleAsync(guard, role, role.Name, role.Definition.Description, grants, version, "role.privilege", cancellationToken);
    }

    /// <summary>
    /// A whole row (one entity, every action) or a whole column (one action, every entity) of the privilege grid set to one
    /// depth in one change: one version check, one audit entry whose before and after hold exactly the cells it changed.
    /// </summary>
    public async Task<AdminProblem?> SetPrivilegeLineAsync(AdminGuard guard, string roleId, string? entity, string? action, string? depth, int? version, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.Role, CrmAction.Update) is { } denied)
        {
            return denied;
        }

        var index = guard.Snapshot.RoleIndex(roleId);
        if (index < 0)
        {
            return AdminProblem.NotFound("role", roleId);
        }

        var snapshot = guard.Snapshot;
        var role = snapshot.Roles[index];
        List<(EntityInfo Entity, CrmAction Action)> cells;
        string line;
        if (entity is not null)
        {
            if (snapshot.Entity(entity) is not { } info)
            {
                return AdminProblem.Invalid("entity", $"unknown entity '{entity}' (declared: {string.Join(", ", snapshot.Entities.Select(e => e.Name))}).");
            }

            cells = [.. CrmNames.Actions.Select(a => (info, a))];
            line = $"row {info.Name}";
        }
        else
        {
            if (!CrmNames.TryParseAction(action ?? "", out var parsed))
            {
                return AdminProblem.Invalid("action", $"unknown action '{action}' (use one of {CrmNames.ActionList}).");
            }

            cells = [.. snapshot.Entities.Select(e => (e, parsed))];
            line = $"column {parsed.Name()}";
        }

        if (!CrmNames.TryParseDepth(depth ?? "", out var target))
        {
            return AdminProblem.Invalid("depth", $"invalid depth '{depth}' (use one of {CrmNames.DepthList}).");
        }

        var changed = cells
            .Select(c => (c.Entity, c.Action, Before: (Depth)role.Depths[(c.Entity.Index * CrmNames.ActionCount) + (int)c.Action]))
            .Where(c => c.Before != target)
            .ToList();
        foreach (var cell in changed.Where(c => target > c.Before))
        {
            if (guard.RequireHolds(cell.Entity.Name, cell.Action, target, $"role '{role.Name}'") is { } escalation)
            {
                return escalation;
            }
        }

        var keys = changed.Select(c => (c.Entity.Name, c.Action)).ToHashSet();
        var grants = role.Definition.Privileges.Where(p => !keys.Contains((p.Entity, p.Action)))
            .Concat(changed.Select(c => new PrivilegeGrant(c.Entity.Name, c.Action, target)))
            .ToList();
        var cellsBefore = new SortedDictionary<string, string>(changed.ToDictionary(c => $"{c.Entity.Name}:{c.Action.Name()}", c => c.Before.Name()), StringComparer.Ordinal);
        var cellsAfter = new SortedDictionary<string, string>(changed.ToDictionary(c => $"{c.Entity.Name}:{c.Action.Name()}", _ => target.Name()), StringComparer.Ordinal);
        return await ReplaceRoleAsync(guard, role, role.Name, role.Definition.Description, grants, version, "role.privileges", cancellationToken,
            (new { line, cells = cellsBefore }, new { line, cells = cellsAfter }));
    }

    private Task<AdminProblem?> ReplaceRoleAsync(AdminGuard guard, RoleInfo role, string name, string description, IReadOnlyList<PrivilegeGrant> grants, int? version, string action, CancellationToken cancellationToken,
        (object Before, object After)? audited = null) =>
        changes.ApplyAsync(guard.Actor, async context =>
        {
            var record = await context.Store.CrmRoles.SingleOrDefaultAsync(r => r.Id == role.Id, cancellationToken);
            if (record is null)
            {
                return AdminProblem.NotFound("role", role.Id);
            }

            if (await StaleAsync(context, "role", record.Id, record.Name, record.Version, version, cancellationToken) is { } stale)
            {
                return stale;
            }

            var effective = grants.Where(g => g.Depth != Depth.None).ToList();
            var before = new { name = record.Name, description = record.Description, privileges = Matrix(role.Definition.Privileges) };
            record.Name = name;
            record.Description = description;
            record.Version++;
            await context.Store.RolePrivileges.Where(p => p.RoleId == role.Id).ExecuteDeleteAsync(cancellationToken);
            context.Store.RolePrivileges.AddRange(effective.Select(g => new RolePrivilegeRecord { RoleId = role.Id, Entity = g.Entity, Action = g.Action.Name(), Depth = g.Depth.Name() }));
            var after = new { name, description, privileges = Matrix(effective) };
            context.Audit(new AuditChange(action, "security_role", role.Id, name, audited?.Before ?? before, audited?.After ?? after, Summary: $"security_role '{name}': {Difference(role.Definition.Privileges, effective)}"));
            return null;
        }, cancellationToken);

    public async Task<AdminProblem?> DeleteRoleAsync(AdminGuard guard, string roleId, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.Role, CrmAction.Delete) is { } denied)
        {
            return denied;
        }

        var snapshot = guard.Snapshot;
        var index = snapshot.RoleIndex(roleId);
        if (index < 0)
        {
            return AdminProblem.NotFound("role", roleId);
        }

        var role = snapshot.Roles[index];
        return await changes.ApplyAsync(guard.Actor, async context =>
        {
            // Checked inside the transaction (changes are serialised on the model-version row), so an assignment made
            // meanwhile is seen: a role still in use is never deleted out from under its holders.
            var users = await context.Store.CrmUserRoles.Where(a => a.RoleId == roleId).Select(a => a.UserId).ToListAsync(cancellationToken);
            var teams = await context.Store.TeamRoles.Where(a => a.RoleId == roleId).Select(a => a.TeamId).ToListAsync(cancellationToken);
            if (users.Count > 0 || teams.Count > 0)
            {
                var names = users.Select(u => snapshot.User(u)?.UserName ?? u).Concat(teams.Select(t => "team " + t)).Take(5);
                return AdminProblem.Conflict($"Role '{role.Name}' is still assigned to {users.Count} user(s) and {teams.Count} team(s) ({string.Join(", ", names)}); remove those assignments first.");
            }

            await context.Store.RolePrivileges.Where(p => p.RoleId == roleId).ExecuteDeleteAsync(cancellationToken);
            await context.Store.CrmRoles.Where(r => r.Id == roleId).ExecuteDeleteAsync(cancellationToken);
            context.Audit(new AuditChange("role.delete", "security_role", roleId, role.Name, new { name = role.Name, privileges = Matrix(role.Definition.Privileges) }, null));
            return null;
        }, cancellationToken);
    }

    public static RoleView View(AuthorizationSnapshot snapshot, RoleInfo role, int version) => new(
        role.Id, role.Name, role.Definition.Description, Matrix(role.Definition.Privileges),
        snapshot.Users.Count(u => u.DirectRoles.Contains(role.Index)), snapshot.Teams.Count(t => t.Roles.Contains(role.Index)), version);

    /// <summary>Reads a privilege matrix, naming the JSON path of the first bad entry; increases must be held by the caller.</summary>
    private static (IReadOnlyList<PrivilegeGrant> Grants, AdminProblem? Problem) ParsePrivileges(AdminGuard guard, Dictionary<string, Dictionary<string, string>> matrix, string what, RoleInfo? before = null)
    {
        var snapshot = guard.Snapshot;
        var grants = new List<PrivilegeGrant>();
        foreach (var (entity, actions) in matrix)
        {
            if (snapshot.Entity(entity) is not { } info)
            {
                return ([], AdminProblem.Invalid($"privileges.{entity}", $"unknown entity '{entity}' (declared: {string.Join(", ", snapshot.Entities.Select(e => e.Name))})."));
            }

            foreach (var (actionName, depthName) in actions)
            {
                if (!CrmNames.TryParseAction(actionName, out var action))
                {
                    return ([], AdminProblem.Invalid($"privileges.{entity}.{actionName}", $"unknown action '{actionName}' (use one of {CrmNames.ActionList})."));
                }

                if (!CrmNames.TryParseDepth(depthName, out var depth))
                {
                    return ([], AdminProblem.Invalid($"privileges.{entity}.{actionName}", $"invalid depth '{depthName}' (use one of {CrmNames.DepthList})."));
                }

                var old = before is null ? Depth.None : (Depth)before.Depths[(info.Index * CrmNames.ActionCount) + (int)action];
                if (depth > old && guard.RequireHolds(entity, action, depth, what) is { } escalation)
                {
                    return ([], escalation);
                }

                grants.Add(new PrivilegeGrant(entity, action, depth));
            }
        }

        return (grants, null);
    }

    private static SortedDictionary<string, SortedDictionary<string, string>> Matrix(IEnumerable<PrivilegeGrant> grants)
    {
        var matrix = new SortedDictionary<string, SortedDictionary<string, string>>(StringComparer.Ordinal);
        foreach (var grant in grants.Where(g => g.Depth != Depth.None))
        {
            if (!matrix.TryGetValue(grant.Entity, out var row))
            {
                matrix[grant.Entity] = row = new SortedDictionary<string, string>(StringComparer.Ordinal);
            }

            row[grant.Action.Name()] = grant.Depth.Name();
        }

        return matrix;
    }

    private static string Difference(IEnumerable<PrivilegeGrant> before, IEnumerable<PrivilegeGrant> after)
    {
        var old = before.Where(g => g.Depth != Depth.None).ToDictionary(g => (g.Entity, g.Action), g => g.Depth);
        var now = after.ToDictionary(g => (g.Entity, g.Action), g => g.Depth);
        var changed = old.Keys.Union(now.Keys)
            .Select(k => (k, From: old.GetValueOrDefault(k), To: now.GetValueOrDefault(k)))
            .Where(c => c.From != c.To)
            .Select(c => $"{c.k.Entity}:{c.k.Action.Name()} {c.From.Name()} -> {c.To.Name()}")
            .ToList();
        return changed.Count == 0 ? "no privilege changed" : string.Join("; ", changed);
    }
}
