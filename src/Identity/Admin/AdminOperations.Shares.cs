using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Admin;

internal sealed partial class AdminOperations
{
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
        if (RevokeRefusal(guard, share) is { } refused)
        {
            return refused;
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

    /// <summary>
    /// Why the caller may not revoke <paramref name="share"/>, or null when they may: its recipient may give it up; anyone
    /// else needs the share privilege over the record where the share is bound (Dynamics 365: unsharing needs share), and for
    /// a share without a location, share at organization depth (OWASP ASVS 4.0.3 V4.2.1, no access by guessing an id).
    /// </summary>
    private static AdminProblem? RevokeRefusal(AdminGuard guard, ShareInfo share)
    {
        var snapshot = guard.Snapshot;
        var definition = share.Definition;
        if (definition.PrincipalKind == PrincipalKind.User && definition.PrincipalId == guard.CallerInfo.Id)
        {
            return null;
        }

        var allowed = share.IsBound
            ? snapshot.Check(guard.Caller, share.Entity, CrmAction.Share,
                new RecordRef(definition.RecordId, definition.RecordOwner, definition.RecordOwnerKind, snapshot.BusinessUnits[share.BusinessUnit].Id)).Allowed
            : snapshot.CheckEntity(guard.Caller, share.Entity, CrmAction.Share) is { Allowed: true, Depth: Depth.Organization };
        return allowed
            ? null
            : AdminProblem.Forbidden(share.IsBound
                ? $"{guard.Actor.Name} does not hold share on {definition.Entity} '{definition.RecordId}' in business unit '{snapshot.BusinessUnits[share.BusinessUnit].Name}'."
                : $"{guard.Actor.Name} does not hold share on {definition.Entity} at organization depth.");
    }

    /// <summary>
    /// The record shares the caller could revoke (and so may see), filtered by recipient and entity. A share the caller
    /// holds no share privilege over is left out, not shown greyed out: a business-unit admin learns nothing about records
    /// shared elsewhere. <paramref name="user"/> (id or user name) matches shares to that user and to the teams they are in.
    /// </summary>
    public static (IReadOnlyList<ShareView> Shares, AdminProblem? Problem) ListShares(AdminGuard guard, string? user, string? entity)
    {
        var snapshot = guard.Snapshot;
        int entityIndex = -1;
        if (!string.IsNullOrEmpty(entity))
        {
            var info = snapshot.Entity(entity);
            if (info is null || info.IsSystem)
            {
                return ([], AdminProblem.Invalid("entity", $"unknown entity '{entity}'."));
            }

            entityIndex = info.Index;
        }

        UserInfo? recipient = null;
        if (!string.IsNullOrEmpty(user))
        {
            recipient = snapshot.User(user) ?? snapshot.Users.FirstOrDefault(u => string.Equals(u.UserName, user, StringComparison.OrdinalIgnoreCase));
            // An unknown user and one outside the caller's reach look the same: no shares, and no hint which it is.
            if (recipient is null || !guard.Covers(SystemEntities.User, CrmAction.Read, snapshot.BusinessUnits[recipient.BusinessUnit].Id))
            {
                return ([], null);
            }
        }

        var result = new List<ShareView>();
        foreach (var share in snapshot.Shares)
        {
            var definition = share.Definition;
            if (entityIndex >= 0 && share.Entity != entityIndex)
            {
                continue;
            }

            if (recipient is not null && !(definition.PrincipalKind == PrincipalKind.User
                    ? definition.PrincipalId == recipient.Id
                    : recipient.Teams.Any(t => snapshot.Teams[t].Id == definition.PrincipalId)))
            {
                continue;
            }

            if (RevokeRefusal(guard, share) is not null)
            {
                continue;
            }

            var principal = definition.PrincipalKind == PrincipalKind.Team
                ? snapshot.TeamIndex(definition.PrincipalId) is var t and >= 0 ? snapshot.Teams[t].Name : definition.PrincipalId
                : snapshot.User(definition.PrincipalId)?.UserName ?? definition.PrincipalId;
            result.Add(new ShareView(definition.Id, definition.Entity, definition.RecordId,
                share.IsBound ? snapshot.BusinessUnits[share.BusinessUnit].Id : null,
                share.IsBound ? snapshot.BusinessUnits[share.BusinessUnit].Name : null,
                definition.RecordOwner, definition.PrincipalKind.Name(), definition.PrincipalId, principal,
                [.. definition.Actions.Select(a => a.Name())],
                definition.CreatedBy is { } by ? snapshot.User(by)?.UserName ?? by : null));
        }

        result.Sort((a, b) => (a.Entity, a.RecordId, a.PrincipalName).CompareTo((b.Entity, b.RecordId, b.PrincipalName)));
        return (result, null);
    }

    private static string OwnerName(AuthorizationSnapshot snapshot, string owner, PrincipalKind kind) => kind == PrincipalKind.Team
        ? $"team '{(snapshot.TeamIndex(owner) is var t and >= 0 ? snapshot.Teams[t].Name : owner)}'"
        : snapshot.User(owner)?.UserName ?? owner;
}
