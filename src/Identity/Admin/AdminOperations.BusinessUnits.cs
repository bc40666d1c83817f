using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Admin;

internal sealed partial class AdminOperations
{
    public async Task<AdminProblem?> CreateBusinessUnitAsync(AdminGuard guard, BusinessUnitBody body, CancellationToken cancellationToken)
    {
        if (Identifier(body.Id, "id") is { } badId)
        {
            return badId;
        }

        if (UnitName(guard.Snapshot, body.Name, null) is { } badName)
        {
            return badName;
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
        if (body.Name is not null && UnitName(snapshot, body.Name, id) is { } badName)
        {
            return badName;
        }

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

    public async Task<AdminProblem?> DeleteBusinessUnitAsync(AdminGuard guard, string id, int? version, CancellationToken cancellationToken)
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
            var record = await context.Store.BusinessUnits.AsNoTracking().SingleAsync(b => b.Id == id, cancellationToken);
            if (await StaleAsync(context, "business unit", id, record.Name, record.Version, version, cancellationToken) is { } stale)
            {
                return stale;
            }

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

    /// <summary>
    /// The units the caller may view as a tree in pre-order, children by name. A unit whose parent the caller may not view
    /// (a business-unit admin's own unit) is a top of the tree as shown; nothing outside the caller's reach is named.
    /// </summary>
    public static IReadOnlyList<BusinessUnitNode> BusinessUnitTree(AdminGuard guard, IReadOnlyDictionary<string, int> versions)
    {
        var snapshot = guard.Snapshot;
        var visible = snapshot.BusinessUnits.Where(u => guard.Covers(SystemEntities.BusinessUnit, CrmAction.Read, u.Id)).ToHashSet();
        var children = visible.ToLookup(u => u.Parent >= 0 && visible.Contains(snapshot.BusinessUnits[u.Parent]) ? u.Parent : -1);
        var users = snapshot.Users.CountBy(u => u.BusinessUnit).ToDictionary();
        var teams = snapshot.Teams.CountBy(t => t.BusinessUnit).ToDictionary();
        var nodes = new List<BusinessUnitNode>(visible.Count);
        void Visit(int parent, int level)
        {
            foreach (var unit in children[parent].OrderBy(u => u.Name, StringComparer.CurrentCultureIgnoreCase))
            {
                var view = new BusinessUnitView(unit.Id, unit.Name, unit.Parent >= 0 ? snapshot.BusinessUnits[unit.Parent].Id : null, versions.GetValueOrDefault(unit.Id),
                    snapshot.BusinessUnits.Count(u => u.Parent == unit.Index), users.GetValueOrDefault(unit.Index), teams.GetValueOrDefault(unit.Index));
                nodes.Add(new BusinessUnitNode(view, level));
                Visit(unit.Index, level + 1);
            }
        }

        Visit(-1, 0);
        return nodes;
    }

    /// <summary>
    /// A unit's name: required, at most <see cref="MaxNameLength"/> characters, and unique in the organisation (ignoring
    /// case), as Dynamics 365 requires of business unit names, so a name in a parent picker or an audit entry means one unit.
    /// </summary>
    private static AdminProblem? UnitName(AuthorizationSnapshot snapshot, string? name, string? self)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Trim().Length > MaxNameLength)
        {
            return AdminProblem.Invalid("name", $"name is required: 1 to {MaxNameLength} characters.");
        }

        var trimmed = name.Trim();
        return snapshot.BusinessUnits.FirstOrDefault(u => u.Id != self && string.Equals(u.Name, trimmed, StringComparison.OrdinalIgnoreCase)) is { } taken
            ? new AdminProblem(StatusCodes.Status409Conflict, "Conflict", $"The business unit '{taken.Name}' ({taken.Id}) already has this name.",
                new Dictionary<string, string[]> { ["name"] = [$"'{taken.Name}' is taken by business unit '{taken.Id}'."] })
            : null;
    }

    private static IEnumerable<BusinessUnitInfo> Ancestors(AuthorizationSnapshot snapshot, int index)
    {
        for (var i = index; i >= 0; i = snapshot.BusinessUnits[i].Parent)
        {
            yield return snapshot.BusinessUnits[i];
        }
    }
}
