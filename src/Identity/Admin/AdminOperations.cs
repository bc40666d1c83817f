using System.Globalization;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Incident;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// Every admin change, for the admin API and the admin pages alike. Each one checks the caller's admin privileges on the
/// snapshot the change starts from, validates the input naming the field, and runs as one <see cref="ModelChanges"/>
/// transaction that appends a hash-chained audit entry (actor, target names, before and after, source IP) and emits the
/// access event; a refusal anywhere rolls the whole change back.
/// </summary>
internal sealed class AdminOperations(ModelChanges changes, IncidentResponse incidents, UserManager<CrmUser> users, IOpenIddictApplicationManager applications)
{
    public const int MaxIdLength = 100;

    /// <summary>ASP.NET Core Identity's column sizes for display names and e-mail addresses.</summary>
    public const int MaxNameLength = 200;

    public const int MaxEmailLength = 256;

    // ---- roles -------------------------------------------------------------------------------------------------

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

    private Task<AdminProblem?> ReplaceRoleAsync(AdminGuard guard, RoleInfo role, string name, string description, IReadOnlyList<PrivilegeGrant> grants, int? version, string action, CancellationToken cancellationToken) =>
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
            context.Audit(new AuditChange(action, "security_role", role.Id, name, before, after, Summary: $"security_role '{name}': {Difference(role.Definition.Privileges, effective)}"));
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

    // ---- business units -----------------------------------------------------------------------------------------

    public async Task<AdminProblem?> CreateBusinessUnitAsync(AdminGuard guard, BusinessUnitBody body, CancellationToken cancellationToken)
    {
        if (Identifier(body.Id, "id") is { } badId)
        {
            return badId;
        }

        if (string.IsNullOrWhiteSpace(body.Name))
        {
            return AdminProblem.Invalid("name", "name is required.");
        }

        var parent = body.Parent ?? guard.RootId;
        if (guard.Snapshot.BusinessUnitIndex(parent) < 0)
        {
            return AdminProblem.Invalid("parent", $"unknown business unit '{parent}'.");
        }

        // A unit is created inside its parent: the admin needs create on business_unit covering the parent.
        if (guard.Require(SystemEntities.BusinessUnit, CrmAction.Create, parent) is { } denied)
        {
            return denied;
        }

        if (guard.Snapshot.BusinessUnitIndex(body.Id!) >= 0)
        {
            return AdminProblem.Conflict($"A business unit with id '{body.Id}' already exists.");
        }

        return await changes.ApplyAsync(guard.Actor, context =>
        {
            context.Store.BusinessUnits.Add(new BusinessUnitRecord { Id = body.Id!, Name = body.Name!.Trim(), ParentId = parent });
            context.Audit(new AuditChange("business_unit.create", "business_unit", body.Id!, body.Name!, null, new { name = body.Name, parent }));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);
    }

    public async Task<AdminProblem?> UpdateBusinessUnitAsync(AdminGuard guard, string id, BusinessUnitBody body, CancellationToken cancellationToken)
    {
        var snapshot = guard.Snapshot;
        var index = snapshot.BusinessUnitIndex(id);
        if (index < 0)
        {
            return AdminProblem.NotFound("business unit", id);
        }

        if (guard.Require(SystemEntities.BusinessUnit, CrmAction.Update, id) is { } denied)
        {
            return denied;
        }

        var unit = snapshot.BusinessUnits[index];
        var parent = body.Parent ?? (unit.Parent >= 0 ? snapshot.BusinessUnits[unit.Parent].Id : null);
        if (parent is not null && body.Parent is not null)
        {
            var p = snapshot.BusinessUnitIndex(parent);
            if (p < 0)
            {
                return AdminProblem.Invalid("parent", $"unknown business unit '{parent}'.");
            }
            else if (unit.Parent < 0)
            {
                return AdminProblem.Invalid("parent", $"'{unit.Name}' is the root of the tree and cannot be moved.");
            }
            else if (unit.Contains(snapshot.BusinessUnits[p]))
            {
                // The tree must stay a tree: a unit cannot move below itself or one of its own descendants.
                var path = string.Join(" > ", Ancestors(snapshot, p).Reverse().SkipWhile(u => u.Index != index).Select(u => u.Name));
                return AdminProblem.Invalid("parent", $"moving '{unit.Name}' under '{snapshot.BusinessUnits[p].Name}' would make a cycle ({path} > {unit.Name}).");
            }
            else if (guard.Require(SystemEntities.BusinessUnit, CrmAction.Update, parent) is { } deniedParent)
            {
                return deniedParent;
            }
        }

        return await changes.ApplyAsync(guard.Actor, async context =>
        {
            var record = await context.Store.BusinessUnits.SingleAsync(b => b.Id == id, cancellationToken);
            if (await StaleAsync(context, "business unit", id, record.Name, record.Version, body.Version, cancellationToken) is { } stale)
            {
                return stale;
            }

            var before = new { name = record.Name, parent = record.ParentId };
            record.Name = string.IsNullOrWhiteSpace(body.Name) ? record.Name : body.Name.Trim();
            record.ParentId = parent;
            record.Version++;
            context.Audit(new AuditChange("business_unit.update", "business_unit", id, record.Name, before, new { name = record.Name, parent }));
            return null;
        }, cancellationToken);
    }

    public async Task<AdminProblem?> DeleteBusinessUnitAsync(AdminGuard guard, string id, CancellationToken cancellationToken)
    {
        var snapshot = guard.Snapshot;
        var index = snapshot.BusinessUnitIndex(id);
        if (index < 0)
        {
            return AdminProblem.NotFound("business unit", id);
        }

        if (guard.Require(SystemEntities.BusinessUnit, CrmAction.Delete, id) is { } denied)
        {
            return denied;
        }

        var unit = snapshot.BusinessUnits[index];
        return await changes.ApplyAsync(guard.Actor, async context =>
        {
            var children = await context.Store.BusinessUnits.CountAsync(b => b.ParentId == id, cancellationToken);
            var users = await context.Store.Users.CountAsync(u => u.BusinessUnit == id, cancellationToken);
            var teams = await context.Store.Teams.CountAsync(t => t.BusinessUnitId == id, cancellationToken);
            var shares = await context.Store.Shares.CountAsync(s => s.RecordBusinessUnit == id, cancellationToken);
            if (unit.Parent < 0 || children + users + teams + shares > 0)
            {
                return AdminProblem.Conflict(unit.Parent < 0
                    ? $"'{unit.Name}' is the root business unit and cannot be deleted."
                    : $"Business unit '{unit.Name}' still has {children} child unit(s), {users} user(s), {teams} team(s) and {shares} record share(s) bound to it; move or delete them first.");
            }

            await context.Store.BusinessUnits.Where(b => b.Id == id).ExecuteDeleteAsync(cancellationToken);
            context.Audit(new AuditChange("business_unit.delete", "business_unit", id, unit.Name, new { name = unit.Name, parent = snapshot.BusinessUnits[unit.Parent].Id }, null));
            return null;
        }, cancellationToken);
    }

    // ---- teams --------------------------------------------------------------------------------------------------

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

    // ---- users --------------------------------------------------------------------------------------------------

    /// <summary>
    /// Creates a user (or an application user, bound to an OIDC client) through the same validators as every other path
    /// (red-team finding 11): ASP.NET Core Identity's user validators (user name characters, a valid and unique e-mail
    /// address) and password validators (length, deny list). Application users have no password, so they never sign in
    /// interactively; their client must exist and may have only one. Every refusal is problem details naming the field.
    /// </summary>
    public async Task<(string? Id, AdminProblem? Problem)> CreateUserAsync(AdminGuard guard, UserBody body, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(body.UserName) || body.UserName.Length > MaxIdLength)
        {
            return (null, AdminProblem.Invalid("user_name", $"user_name is required (at most {MaxIdLength} characters)."));
        }

        if (body.DisplayName is { Length: > MaxNameLength })
        {
            return (null, AdminProblem.Invalid("display_name", $"display_name is longer than {MaxNameLength} characters."));
        }

        if (body.Email is { Length: > MaxEmailLength })
        {
            return (null, AdminProblem.Invalid("email", $"email is longer than {MaxEmailLength} characters."));
        }

        var unit = body.BusinessUnit ?? "";
        if (guard.Snapshot.BusinessUnitIndex(unit) < 0)
        {
            return (null, AdminProblem.Invalid("business_unit", body.BusinessUnit is null ? "business_unit is required." : $"unknown business unit '{unit}'."));
        }

        if (guard.Require(SystemEntities.User, CrmAction.Create, unit) is { } denied)
        {
            return (null, denied);
        }

        var clientId = string.IsNullOrWhiteSpace(body.ApplicationClientId) ? null : body.ApplicationClientId.Trim();
        if (clientId is not null)
        {
            // An application user signs in with nothing: its client's credentials act as it (Dynamics 365 application users).
            if (!string.IsNullOrEmpty(body.Password))
            {
                return (null, AdminProblem.Invalid("password", "An application user has no password: its client's own tokens act as it, and it cannot sign in interactively. Leave password out."));
            }

            // Binding a client to a user gives every token the client obtains for itself that user's rights: it changes
            // what the client can do, an organisation-wide object.
            if (guard.Require(SystemEntities.Client, CrmAction.Update) is { } clientDenied)
            {
                return (null, clientDenied);
            }

            if (clientId.Length > MaxIdLength || await applications.FindByClientIdAsync(clientId, cancellationToken) is null)
            {
                return (null, AdminProblem.Invalid("application_client_id", $"There is no OIDC client '{clientId}' to bind the application user to."));
            }
        }

        var email = string.IsNullOrWhiteSpace(body.Email) ? null : body.Email.Trim();
        var user = new CrmUser
        {
            UserName = body.UserName.Trim(),
            Email = email,
            DisplayName = string.IsNullOrWhiteSpace(body.DisplayName) ? body.UserName.Trim() : body.DisplayName.Trim(),
            BusinessUnit = unit,
            ApplicationClientId = clientId,
            SecurityStamp = Guid.NewGuid().ToString("N"),
            LockoutEnabled = true,
        };
        user.NormalizedUserName = users.NormalizeName(user.UserName);
        user.NormalizedEmail = users.NormalizeEmail(email);

        var problem = await changes.ApplyAsync(guard.Actor, async context =>
        {
            // Checked inside the transaction (changes are serialised on the model-version row), so two requests racing
            // for the same name, address or client do not both pass.
            if (clientId is not null && await context.Store.Users.AnyAsync(u => u.ApplicationClientId == clientId, cancellationToken))
            {
                return Field(StatusCodes.Status409Conflict, "application_client_id", $"Client '{clientId}' already has an application user; a client acts as one user only.");
            }

            // An address held twice breaks its owner's sign-in by e-mail and password reset: never create a second one.
            if (user.NormalizedEmail is not null && await context.Store.Users.AnyAsync(u => u.NormalizedEmail == user.NormalizedEmail, cancellationToken))
            {
                return Field(StatusCodes.Status409Conflict, "email", $"The e-mail address '{email}' is already used by another user.");
            }

            var errors = new List<IdentityError>();
            foreach (var validator in users.UserValidators)
            {
                errors.AddRange((await validator.ValidateAsync(users, user)).Errors
                    // Application users receive no mail: an address is optional for them (Identity requires one when e-mail must be unique).
                    .Where(e => !(clientId is not null && email is null && e.Code == nameof(IdentityErrorDescriber.InvalidEmail))));
            }

            if (!string.IsNullOrEmpty(body.Password))
            {
                foreach (var validator in users.PasswordValidators)
                {
                    errors.AddRange((await validator.ValidateAsync(users, user, body.Password)).Errors);
                }
            }

            if (errors.Count > 0)
            {
                return Refusal(errors);
            }

            if (!string.IsNullOrEmpty(body.Password))
            {
                user.PasswordHash = users.PasswordHasher.HashPassword(user, body.Password);
            }

            context.Store.Users.Add(user);
            context.Audit(new AuditChange("user.create", "system_user", user.Id, user.UserName!, null,
                new { user_name = user.UserName, display_name = user.DisplayName, email, business_unit = unit, application_client_id = clientId, password = user.PasswordHash is not null },
                TargetUser: user.Id));
            return null;
        }, cancellationToken);
        return (problem is null ? user.Id : null, problem);
    }

    /// <summary>Identity's validation errors as one problem, each under the field it is about; a duplicate is a conflict.</summary>
    private static AdminProblem Refusal(List<IdentityError> errors)
    {
        static string FieldOf(string code) => code switch
        {
            _ when code.StartsWith("Password", StringComparison.Ordinal) => "password",
            _ when code.EndsWith("UserName", StringComparison.Ordinal) => "user_name",
            _ when code.EndsWith("Email", StringComparison.Ordinal) => "email",
            _ => "$",
        };

        var byField = errors.GroupBy(e => FieldOf(e.Code)).ToDictionary(g => g.Key, g => g.Select(e => e.Description).ToArray());
        var conflict = errors.All(e => e.Code.StartsWith("Duplicate", StringComparison.Ordinal));
        return new AdminProblem(conflict ? StatusCodes.Status409Conflict : StatusCodes.Status400BadRequest,
            conflict ? "Conflict" : "The request is not valid", string.Join(" ", errors.Select(e => e.Description)), byField);
    }

    private static AdminProblem Field(int status, string field, string message) =>
        new(status, status == StatusCodes.Status409Conflict ? "Conflict" : "The request is not valid", message, new Dictionary<string, string[]> { [field] = [message] });

    public Task<AdminProblem?> SetUserRolesAsync(AdminGuard guard, string userId, NamesBody body, CancellationToken cancellationToken) =>
        ChangeUserAsync(guard, userId, CrmAction.Assign, "roles", body.Version, async (context, user, info) =>
        {
            var current = info?.DirectRoles ?? [];
            var (roles, problem) = Roles(guard, body.Roles ?? [], "roles", current);
            if (problem is not null)
            {
                return problem;
            }

            await context.Store.CrmUserRoles.Where(r => r.UserId == userId).ExecuteDeleteAsync(cancellationToken);
            context.Store.CrmUserRoles.AddRange(roles.Select(r => new UserRoleRecord { UserId = userId, RoleId = r.Id }));
            context.Audit(new AuditChange("user.roles", "system_user", userId, user.UserName!,
                new { roles = current.Select(r => guard.Snapshot.Roles[r].Name) }, new { roles = roles.Select(r => r.Name) }, AdminEventActions.Assign, userId));
            return null;
        }, cancellationToken);

    public Task<AdminProblem?> SetUserTeamsAsync(AdminGuard guard, string userId, NamesBody body, CancellationToken cancellationToken) =>
        ChangeUserAsync(guard, userId, CrmAction.Assign, "teams", body.Version, async (context, user, info) =>
        {
            var snapshot = guard.Snapshot;
            var current = info?.Teams ?? [];
            var wanted = new List<TeamInfo>();
            foreach (var (id, i) in (body.Teams ?? []).Select((id, i) => (id, i)))
            {
                var t = snapshot.TeamIndex(id);
                if (t < 0)
                {
                    return AdminProblem.Invalid($"teams[{i}]", $"unknown team '{id}'.");
                }

                if (!current.Contains(t))
                {
                    // Joining a team hands out its roles and field security profiles: the admin needs assign on the team
                    // and must hold every privilege and field grant it gives.
                    var team = snapshot.Teams[t];
                    var refused = guard.Require(SystemEntities.Team, CrmAction.Assign, snapshot.BusinessUnits[team.BusinessUnit].Id)
                        ?? team.Roles.Select(r => guard.RequireHolds(snapshot.Roles[r])).FirstOrDefault(p => p is not null)
                        ?? team.Profiles.Select(p => guard.RequireHolds(snapshot.Profiles[p])).FirstOrDefault(p => p is not null);
                    if (refused is not null)
                    {
                        return refused;
                    }
                }

                wanted.Add(snapshot.Teams[t]);
            }

            foreach (var removed in current.Where(t => !wanted.Exists(w => w.Index == t)))
            {
                if (guard.Require(SystemEntities.Team, CrmAction.Assign, snapshot.BusinessUnits[snapshot.Teams[removed].BusinessUnit].Id) is { } refused)
                {
                    return refused;
                }
            }

            await context.Store.TeamMembers.Where(m => m.UserId == userId).ExecuteDeleteAsync(cancellationToken);
            context.Store.TeamMembers.AddRange(wanted.DistinctBy(t => t.Id).Select(t => new TeamMemberRecord { TeamId = t.Id, UserId = userId }));
            context.Audit(new AuditChange("user.teams", "system_user", userId, user.UserName!,
                new { teams = current.Select(t => snapshot.Teams[t].Name) }, new { teams = wanted.Select(t => t.Name) }, AdminEventActions.Assign, userId));
            return null;
        }, cancellationToken);

    public async Task<AdminProblem?> SetUserBusinessUnitAsync(AdminGuard guard, string userId, NamesBody body, CancellationToken cancellationToken)
    {
        if (body.BusinessUnit is null || guard.Snapshot.BusinessUnitIndex(body.BusinessUnit) < 0)
        {
            return AdminProblem.Invalid("business_unit", body.BusinessUnit is null ? "business_unit is required." : $"unknown business unit '{body.BusinessUnit}'.");
        }

        // The admin must cover the new unit as well as the old one, or moving a user out of reach would be a way round.
        if (guard.Require(SystemEntities.User, CrmAction.Update, body.BusinessUnit) is { } denied)
        {
            return denied;
        }

        return await ChangeUserAsync(guard, userId, CrmAction.Update, "business unit", body.Version, (context, user, info) =>
        {
            var before = user.BusinessUnit;
            user.BusinessUnit = body.BusinessUnit;
            context.Audit(new AuditChange("user.business_unit", "system_user", userId, user.UserName!,
                new { business_unit = before }, new { business_unit = body.BusinessUnit }, TargetUser: userId));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);
    }

    /// <summary>
    /// Sets the user's time zone. Nobody sets their own: the analyzer judges odd-hour access in this zone, so moving
    /// one's own zone would hide night-time work.
    /// </summary>
    public Task<AdminProblem?> SetUserZoneInfoAsync(AdminGuard guard, string userId, ZoneInfoBody body, CancellationToken cancellationToken)
    {
        var zone = string.IsNullOrWhiteSpace(body.ZoneInfo) ? null : body.ZoneInfo.Trim();
        if (zone is not null && ZoneInfoProblem(zone) is { } invalid)
        {
            return Task.FromResult<AdminProblem?>(AdminProblem.Invalid("zoneinfo", invalid));
        }

        return ChangeUserAsync(guard, userId, CrmAction.Update, "time zone", body.Version, (context, user, info) =>
        {
            var before = user.ZoneInfo;
            user.ZoneInfo = zone;
            context.Audit(new AuditChange("user.zoneinfo", "system_user", userId, user.UserName!,
                new { zoneinfo = before }, new { zoneinfo = zone }, TargetUser: userId));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);
    }

    /// <summary>Why <paramref name="zone"/> is not a time zone id this system knows in IANA form, or null when it is.</summary>
    internal static string? ZoneInfoProblem(string zone)
    {
        if (zone.Length > 100)
        {
            return "zoneinfo is longer than 100 characters.";
        }

        try
        {
            // OpenID Connect Core §5.1: zoneinfo is a zoneinfo (IANA tz database) name; a Windows id is found too, so refuse it.
            return TimeZoneInfo.FindSystemTimeZoneById(zone).HasIanaId
                ? null
                : $"'{zone}' is a Windows time zone id; use the IANA name (for example Europe/Berlin).";
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return $"'{zone}' is not a known IANA time zone (for example Europe/Berlin, America/New_York).";
        }
    }

    /// <summary>
    /// Disables (or enables) a user as one model change: the model swaps in a snapshot where the user is disabled (so the
    /// decision API, the admin API and the encryption service refuse them at once), and disabling revokes every token,
    /// authorization and session of the user in the same transaction as the hash-chained audit entry (red-team finding 5).
    /// </summary>
    public async Task<(RevocationSummary? Summary, AdminProblem? Problem)> SetUserDisabledAsync(AdminGuard guard, string userId, bool disabled, string? reason, CancellationToken cancellationToken)
    {
        RevocationSummary? summary = null;
        var problem = await ChangeUserAsync(guard, userId, CrmAction.Update, "account", null, async (context, user, info) =>
        {
            var before = user.IsDisabled;
            user.IsDisabled = disabled;
            summary = disabled
                ? await incidents.RevokeUserAsync(user, cancellationToken)
                : new RevocationSummary("user", user.Id, 0, 0);
            context.Audit(new AuditChange(disabled ? "user.disable" : "user.enable", "system_user", userId, user.UserName!,
                new { disabled = before },
                new { disabled, reason, tokens_revoked = summary.TokensRevoked, authorizations_revoked = summary.AuthorizationsRevoked },
                TargetUser: userId, Summary: Reasoned($"{user.UserName} {(disabled ? "disabled" : "enabled")}", reason)));
            return null;
        }, cancellationToken, allowSelf: false);
        return problem is null ? (summary, null) : (null, problem);
    }

    /// <summary>
    /// Incident response for a user: every token, authorization and sign-in session ends, audited in the same transaction.
    /// An admin may do it to themselves (a suspected stolen session is the admin's own emergency too).
    /// </summary>
    public async Task<(RevocationSummary? Summary, AdminProblem? Problem)> RevokeUserAsync(AdminGuard guard, string userId, string? reason, CancellationToken cancellationToken)
    {
        RevocationSummary? summary = null;
        var problem = await ChangeUserAsync(guard, userId, CrmAction.Update, "sessions", null, async (context, user, info) =>
        {
            summary = await incidents.RevokeUserAsync(user, cancellationToken);
            context.Audit(new AuditChange("user.revoke", "system_user", userId, user.UserName!, null,
                new { reason, tokens_revoked = summary.TokensRevoked, authorizations_revoked = summary.AuthorizationsRevoked },
                TargetUser: userId, Summary: Reasoned($"every token and session of {user.UserName} revoked", reason)));
            return null;
        }, cancellationToken, allowSelf: true);
        return problem is null ? (summary, null) : (null, problem);
    }

    private static string Reasoned(string what, string? reason) => string.IsNullOrWhiteSpace(reason) ? what : $"{what}: {reason}";

    public Task<AdminProblem?> UnlockUserAsync(AdminGuard guard, string userId, CancellationToken cancellationToken) =>
        ChangeUserAsync(guard, userId, CrmAction.Update, "account", null, (context, user, info) =>
        {
            var before = new { locked_until = user.LockoutEnd, failed_attempts = user.AccessFailedCount };
            user.LockoutEnd = null;
            user.AccessFailedCount = 0;
            context.Audit(new AuditChange("user.unlock", "system_user", userId, user.UserName!, before, new { locked_until = (DateTimeOffset?)null, failed_attempts = 0 }, TargetUser: userId));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);

    public Task<AdminProblem?> ResetMfaAsync(AdminGuard guard, string userId, CancellationToken cancellationToken) =>
        ChangeUserAsync(guard, userId, CrmAction.Update, "multi-factor authentication", null, async (context, user, info) =>
        {
            var before = user.TwoFactorEnabled;
            user.TwoFactorEnabled = false;
            // ASP.NET Core Identity keeps the authenticator key and recovery codes as user tokens of its own store.
            await context.Store.UserTokens.Where(t => t.UserId == userId && t.LoginProvider == "[AspNetUserStore]").ExecuteDeleteAsync(cancellationToken);

            // Sessions signed in with the old second factor end too, in the same transaction: the next sign-in enrols a new one.
            var revoked = await incidents.RevokeUserAsync(user, cancellationToken);
            context.Audit(new AuditChange("user.reset_mfa", "system_user", userId, user.UserName!, new { mfa = before },
                new { mfa = false, tokens_revoked = revoked.TokensRevoked }, TargetUser: userId));
            return null;
        }, cancellationToken, allowSelf: false);

    /// <summary>
    /// A change to one user: the admin needs <paramref name="action"/> on system_user covering the user's business unit,
    /// may not change themselves (unless <paramref name="allowSelf"/>), and the user's concurrency stamp is the version.
    /// </summary>
    private Task<AdminProblem?> ChangeUserAsync(AdminGuard guard, string userId, CrmAction action, string what, string? version,
        Func<ChangeContext, CrmUser, UserInfo?, Task<AdminProblem?>> change, CancellationToken cancellationToken, bool allowSelf = false) =>
        changes.ApplyAsync(guard.Actor, async context =>
        {
            var user = await context.Store.Users.SingleOrDefaultAsync(u => u.Id == userId, cancellationToken);
            if (user is null)
            {
                return AdminProblem.NotFound("user", userId);
            }

            if (guard.Require(SystemEntities.User, action, user.BusinessUnit) is { } denied)
            {
                return denied;
            }

            if (!allowSelf && guard.RequireNotSelf(userId, what) is { } self)
            {
                return self;
            }

            if (version is not null && !string.Equals(version, user.ConcurrencyStamp, StringComparison.Ordinal))
            {
                return await ConflictAsync(context, "user", userId, user.UserName ?? userId, user.ConcurrencyStamp ?? "", version, cancellationToken);
            }

            user.ConcurrencyStamp = Guid.NewGuid().ToString("N");
            return await change(context, user, guard.Snapshot.User(userId));
        }, cancellationToken);

    public static UserView View(AuthorizationSnapshot snapshot, CrmUser user, DateTimeOffset now)
    {
        var info = snapshot.User(user.Id);
        return new UserView(user.Id, user.UserName ?? user.Id, user.DisplayName ?? user.UserName ?? user.Id, user.BusinessUnit,
            info is null ? [] : [.. info.DirectRoles.Select(r => snapshot.Roles[r].Id)],
            info is null ? [] : [.. info.Teams.Select(t => snapshot.Teams[t].Id)],
            user.IsDisabled, user.LockoutEnd > now, user.TwoFactorEnabled, user.ConcurrencyStamp ?? "", user.ZoneInfo);
    }

    // ---- field security profiles -------------------------------------------------------------------------------

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

    // ---- shares -------------------------------------------------------------------------------------------------

    /// <summary>
    /// Shares one record with a user or team. The share is bound to the record's location as the caller states it (business
    /// unit, and owner when given) and is authorised against that location; a stored share then matches a record only where
    /// the CRM app places the record there, so stating a location one holds rights over reaches no record elsewhere
    /// (red-team finding 2). Nobody shares with themselves or with a team they are in.
    /// </summary>
    public async Task<(string? Id, AdminProblem? Problem)> CreateShareAsync(AdminGuard guard, ShareBody body, CancellationToken cancellationToken)
    {
        var snapshot = guard.Snapshot;
        var entity = body.Entity is null ? null : snapshot.Entity(body.Entity);
        if (entity is null || entity.IsSystem)
        {
            return (null, AdminProblem.Invalid("entity", $"unknown entity '{body.Entity}'."));
        }

        if (Identifier(body.RecordId, "record_id") is { } badRecord)
        {
            return (null, badRecord);
        }

        // The location is what the share is authorised against and bound to: without it there is nothing to check.
        if (string.IsNullOrEmpty(body.RecordBusinessUnit))
        {
            return (null, AdminProblem.Invalid("record_business_unit", "record_business_unit is required: the business unit the record is in. The share applies to the record only while it is there."));
        }

        var unit = snapshot.BusinessUnitIndex(body.RecordBusinessUnit);
        if (unit < 0)
        {
            return (null, AdminProblem.Invalid("record_business_unit", $"unknown business unit '{body.RecordBusinessUnit}'."));
        }

        var ownerKind = PrincipalKind.User;
        if (body.RecordOwnerKind is not null && !CrmNames.TryParsePrincipal(body.RecordOwnerKind, out ownerKind))
        {
            return (null, AdminProblem.Invalid("record_owner_kind", $"unknown owner kind '{body.RecordOwnerKind}' (use user or team)."));
        }

        if (body.RecordOwner is not null && (ownerKind == PrincipalKind.Team ? snapshot.TeamIndex(body.RecordOwner) : snapshot.UserIndex(body.RecordOwner)) < 0)
        {
            return (null, AdminProblem.Invalid("record_owner", $"unknown {ownerKind.Name()} '{body.RecordOwner}'."));
        }

        if (!CrmNames.TryParsePrincipal(body.PrincipalKind, out var kind))
        {
            return (null, AdminProblem.Invalid("principal_kind", $"unknown principal kind '{body.PrincipalKind}' (use user or team)."));
        }

        var teamIndex = kind == PrincipalKind.Team ? snapshot.TeamIndex(body.PrincipalId ?? "") : -1;
        var principalName = kind == PrincipalKind.Team
            ? teamIndex >= 0 ? snapshot.Teams[teamIndex].Name : null
            : snapshot.User(body.PrincipalId ?? "")?.UserName;
        if (principalName is null)
        {
            return (null, AdminProblem.Invalid("principal_id", $"unknown {kind.Name()} '{body.PrincipalId}'."));
        }

        // OWASP ASVS 4.0.3 V4.1.3 (least privilege): a share is for someone else. Sharing with oneself, or with a team one
        // is in, would turn one's own claim about a record into access to it.
        if (kind == PrincipalKind.User ? body.PrincipalId == guard.CallerInfo.Id : snapshot.Teams[teamIndex].Members.Contains(guard.Caller))
        {
            var message = kind == PrincipalKind.User
                ? $"{guard.Actor.Name} cannot share a record with themselves."
                : $"{guard.Actor.Name} is a member of team '{principalName}' and cannot share a record with it.";
            return (null, new AdminProblem(StatusCodes.Status403Forbidden, "Not allowed", message, new Dictionary<string, string[]> { ["principal_id"] = [message] }));
        }

        var actions = new List<CrmAction>();
        foreach (var (name, i) in (body.Actions ?? []).Select((n, i) => (n, i)))
        {
            if (!CrmNames.TryParseAction(name, out var action))
            {
                return (null, AdminProblem.Invalid($"actions[{i}]", $"unknown action '{name}' (use one of {CrmNames.ActionList})."));
            }

            actions.Add(action);
        }

        if (actions.Count == 0)
        {
            return (null, AdminProblem.Invalid("actions", "at least one action is required."));
        }

        actions = [.. actions.Distinct()];

        // Dynamics 365: sharing needs the share privilege over the record, and nobody shares an action they could not do
        // to the record themselves. Both are checked at the location the share is bound to.
        var location = snapshot.BusinessUnits[unit];
        var record = new RecordRef(body.RecordId, body.RecordOwner, ownerKind, location.Id);
        foreach (var action in actions.Prepend(CrmAction.Share).Distinct())
        {
            if (!snapshot.Check(guard.Caller, entity.Index, action, record).Allowed)
            {
                var where = body.RecordOwner is null ? $"in business unit '{location.Name}'" : $"owned by {OwnerName(snapshot, body.RecordOwner, ownerKind)} in business unit '{location.Name}'";
                return (null, AdminProblem.Forbidden($"{guard.Actor.Name} cannot share {action.Name()} on {entity.Name} '{body.RecordId}' {where}: they do not hold {action.Name()} on that record."));
            }
        }

        var after = new
        {
            entity = entity.Name,
            record_id = body.RecordId,
            record_business_unit = location.Id,
            record_owner = body.RecordOwner,
            record_owner_kind = body.RecordOwner is null ? null : ownerKind.Name(),
            principal = principalName,
            actions = actions.Select(a => a.Name()),
        };
        var id = Guid.NewGuid().ToString("N");
        var problem = await changes.ApplyAsync(guard.Actor, async context =>
        {
            // One share per record and principal (the table's unique key). A share made before locations were kept grants
            // nothing; sharing again binds it. A bound one is not moved silently: delete it first.
            var existing = await context.Store.Shares.SingleOrDefaultAsync(
                s => s.Entity == entity.Name && s.RecordId == body.RecordId && s.PrincipalKind == kind.Name() && s.PrincipalId == body.PrincipalId, cancellationToken);
            if (existing is { RecordBusinessUnit: not null })
            {
                var message = $"{entity.Name} '{body.RecordId}' is already shared with {kind.Name()} {principalName} (share {existing.Id}, business unit '{existing.RecordBusinessUnit}'); delete that share first.";
                return new AdminProblem(StatusCodes.Status409Conflict, "Conflict", message, new Dictionary<string, string[]> { ["record_id"] = [message] });
            }

            var before = existing is null ? null : new { entity = existing.Entity, record_id = existing.RecordId, record_business_unit = (string?)null, principal = principalName, actions = existing.Actions.Split(',') };
            var share = existing ?? new ShareRecord
            {
                Id = id,
                Entity = entity.Name,
                RecordId = body.RecordId!,
                PrincipalKind = kind.Name(),
                PrincipalId = body.PrincipalId!,
                Actions = "",
                CreatedBy = guard.Actor.Id,
            };
            if (existing is null)
            {
                context.Store.Shares.Add(share);
            }

            id = share.Id;
            share.Actions = string.Join(',', actions.Select(a => a.Name()));
            share.CreatedAt = context.Now;
            share.CreatedBy = guard.Actor.Id;
            share.RecordBusinessUnit = location.Id;
            share.RecordOwner = body.RecordOwner;
            share.RecordOwnerKind = body.RecordOwner is null ? null : ownerKind.Name();
            context.Audit(new AuditChange(existing is null ? "share.create" : "share.bind", "share", share.Id,
                $"{entity.Name} {body.RecordId} to {kind.Name()} {principalName}", before, after,
                AdminEventActions.Share, kind == PrincipalKind.User ? body.PrincipalId : null));
            return null;
        }, cancellationToken);
        return (problem is null ? id : null, problem);
    }

    /// <summary>
    /// Removes a share: the recipient may give it up; anyone else needs the share privilege over the record where the
    /// share is bound (for a share without a location, at organization depth).
    /// </summary>
    public async Task<AdminProblem?> DeleteShareAsync(AdminGuard guard, string shareId, CancellationToken cancellationToken)
    {
        var snapshot = guard.Snapshot;
        var share = snapshot.Shares.FirstOrDefault(s => s.Definition.Id == shareId);
        if (share is null)
        {
            return AdminProblem.NotFound("share", shareId);
        }

        var definition = share.Definition;
        var recipient = definition.PrincipalKind == PrincipalKind.User && definition.PrincipalId == guard.CallerInfo.Id;
        if (!recipient)
        {
            var allowed = share.IsBound
                ? snapshot.Check(guard.Caller, share.Entity, CrmAction.Share,
                    new RecordRef(definition.RecordId, definition.RecordOwner, definition.RecordOwnerKind, snapshot.BusinessUnits[share.BusinessUnit].Id)).Allowed
                : snapshot.CheckEntity(guard.Caller, share.Entity, CrmAction.Share) is { Allowed: true, Depth: Depth.Organization };
            if (!allowed)
            {
                return AdminProblem.Forbidden(share.IsBound
                    ? $"{guard.Actor.Name} does not hold share on {definition.Entity} '{definition.RecordId}' in business unit '{snapshot.BusinessUnits[share.BusinessUnit].Name}'."
                    : $"{guard.Actor.Name} does not hold share on {definition.Entity} at organization depth.");
            }
        }

        return await changes.ApplyAsync(guard.Actor, async context =>
        {
            await context.Store.Shares.Where(s => s.Id == shareId).ExecuteDeleteAsync(cancellationToken);
            context.Audit(new AuditChange("share.delete", "share", shareId, $"{definition.Entity} {definition.RecordId} to {definition.PrincipalKind.Name()} {definition.PrincipalId}",
                new
                {
                    entity = definition.Entity,
                    record_id = definition.RecordId,
                    record_business_unit = definition.RecordBusinessUnit,
                    record_owner = definition.RecordOwner,
                    principal = definition.PrincipalId,
                    actions = definition.Actions.Select(a => a.Name()),
                },
                null, AdminEventActions.Share, definition.PrincipalKind == PrincipalKind.User ? definition.PrincipalId : null));
            return null;
        }, cancellationToken);
    }

    private static string OwnerName(AuthorizationSnapshot snapshot, string owner, PrincipalKind kind) => kind == PrincipalKind.Team
        ? $"team '{(snapshot.TeamIndex(owner) is var t and >= 0 ? snapshot.Teams[t].Name : owner)}'"
        : snapshot.User(owner)?.UserName ?? owner;

    // ---- clients ------------------------------------------------------------------------------------------------

    /// <summary>
    /// Incident response for a client: every token it holds is revoked, audited in the same transaction. Clients belong to
    /// the whole organisation, so this needs update on oidc_client at organization depth.
    /// </summary>
    public async Task<(RevocationSummary? Summary, AdminProblem? Problem)> RevokeClientAsync(AdminGuard guard, string clientId, string? reason, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.Client, CrmAction.Update) is { } denied)
        {
            return (null, denied);
        }

        RevocationSummary? summary = null;
        var problem = await changes.ApplyAsync(guard.Actor, async context =>
        {
            summary = await incidents.RevokeClientAsync(clientId, cancellationToken);
            if (summary is null)
            {
                return AdminProblem.NotFound("client", clientId);
            }

            context.Audit(new AuditChange("client.revoke", "oidc_client", clientId, clientId, null,
                new { reason, tokens_revoked = summary.TokensRevoked, authorizations_revoked = summary.AuthorizationsRevoked },
                Summary: Reasoned($"every token of client {clientId} revoked", reason)));
            return null;
        }, cancellationToken);
        return problem is null ? (summary, null) : (null, problem);
    }

    // ---- parsing and helpers ------------------------------------------------------------------------------------

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

    /// <summary>The roles named, each one held in full by the caller unless the target already has it.</summary>
    private static (List<RoleInfo> Roles, AdminProblem? Problem) Roles(AdminGuard guard, List<string> ids, string field, int[]? current = null)
    {
        var roles = new List<RoleInfo>();
        foreach (var (id, i) in ids.Select((id, i) => (id, i)))
        {
            var index = guard.Snapshot.RoleIndex(id);
            if (index < 0)
            {
                return ([], AdminProblem.Invalid($"{field}[{i}]", $"unknown role '{id}'."));
            }

            var role = guard.Snapshot.Roles[index];
            if (!(current?.Contains(index) ?? false) && guard.RequireHolds(role) is { } escalation)
            {
                return ([], escalation);
            }

            if (!roles.Contains(role))
            {
                roles.Add(role);
            }
        }

        return (roles, null);
    }

    private static AdminProblem? Identifier(string? id, string field) =>
        string.IsNullOrWhiteSpace(id) || id.Length > MaxIdLength || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')
            ? AdminProblem.Invalid(field, $"{field} is required: 1 to {MaxIdLength} letters, digits, '_', '-' or '.'.")
            : null;

    private static Task<AdminProblem?> StaleAsync(ChangeContext context, string kind, string id, string name, int current, int? expected, CancellationToken cancellationToken) =>
        expected is { } e && e != current
            ? ConflictAsync(context, kind, id, name, current.ToString(CultureInfo.InvariantCulture), e.ToString(CultureInfo.InvariantCulture), cancellationToken)!
            : Task.FromResult<AdminProblem?>(null);

    /// <summary>RFC 9110 §13.1.1: the client's copy (If-Match / version) is not the current one; 409 names who changed it last.</summary>
    private static async Task<AdminProblem?> ConflictAsync(ChangeContext context, string kind, string id, string name, string current, string expected, CancellationToken cancellationToken)
    {
        var last = await context.Store.AuditTrail.AsNoTracking().Where(a => a.TargetId == id).OrderByDescending(a => a.Sequence)
            .Select(a => new { a.ActorName, a.Timestamp, a.Action }).FirstOrDefaultAsync(cancellationToken);
        var by = last is null ? "" : string.Create(CultureInfo.InvariantCulture, $" ({last.Action} by {last.ActorName} at {last.Timestamp.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z)");
        return new AdminProblem(StatusCodes.Status409Conflict, "Edit conflict",
            $"The {kind} '{name}' was changed by someone else{by}: you edited version {expected}, the current version is {current}. Reload it and apply your change again.",
            new Dictionary<string, string[]> { ["version"] = [$"expected {expected}, current {current}"] });
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

    private static IEnumerable<BusinessUnitInfo> Ancestors(AuthorizationSnapshot snapshot, int index)
    {
        for (var i = index; i >= 0; i = snapshot.BusinessUnits[i].Parent)
        {
            yield return snapshot.BusinessUnits[i];
        }
    }
}
