using System.Security.Claims;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// The admin permissions of one caller on one snapshot of the model. Admin permissions are privileges on the service's
/// own entities (<see cref="SystemEntities"/>): <c>read</c> is view, <c>create</c>/<c>update</c>/<c>delete</c> are manage,
/// <c>assign</c> gives roles and teams. The depth limits an admin to a business unit (and its children). Nothing is
/// allowed unless a privilege says so (deny by default).
/// </summary>
internal sealed class AdminGuard(AuthorizationSnapshot snapshot, int caller, AdminActor actor)
{
    public AuthorizationSnapshot Snapshot => snapshot;

    public int Caller => caller;

    public AdminActor Actor => actor;

    public UserInfo CallerInfo => snapshot.Users[caller];

    /// <summary>
    /// The caller as the model knows it: a user's token or cookie acts as that user; a client's own token
    /// (sub = client_id) acts as the client's application user (Dynamics 365 "application user"). Anyone else is refused.
    /// </summary>
    public static AdminGuard? For(AuthorizationSnapshot snapshot, ClaimsPrincipal principal, string? sourceIp)
    {
        var subject = principal.FindFirst(Claims.Subject)?.Value ?? principal.FindFirst(ClaimTypes.NameIdentifier)?.Value;
        var client = principal.FindFirst(Claims.ClientId)?.Value;
        if (subject is null)
        {
            return null;
        }

        var index = snapshot.CallerIndex(subject, client);
        if (index < 0 || snapshot.Users[index].Disabled)
        {
            return null;
        }

        var user = snapshot.Users[index];
        return new AdminGuard(snapshot, index, new AdminActor(user.Id, user.UserName, client, sourceIp, index));
    }

    /// <summary>
    /// May the caller do <paramref name="action"/> on <paramref name="entity"/> (a system entity) at all? For objects of the
    /// whole organisation (roles, field security profiles, clients, the audit trail, findings) only organization depth
    /// will do: a business-unit admin's depth never reaches them (red-team finding 10). For objects that live in a
    /// business unit (users, teams, units), any depth passes here and the object's unit is checked with <see cref="Covers"/>.
    /// </summary>
    public AdminProblem? Require(string entity, CrmAction action)
    {
        var entityIndex = snapshot.EntityIndex(entity);
        if (entityIndex < 0)
        {
            return AdminProblem.Forbidden($"{actor.Name} does not hold the admin privilege {action.Name()} on {entity}.");
        }

        var decision = snapshot.CheckEntity(caller, entityIndex, action);
        if (SystemEntities.IsOrganizationWide(entity))
        {
            // OWASP ASVS 4.0.3 V4.1.3 / V4.2.1: an organisation-wide object is outside every business unit's reach.
            return decision.Allowed && decision.Depth == Depth.Organization
                ? null
                : AdminProblem.Forbidden(decision.Allowed
                    ? $"{actor.Name} holds {action.Name()} on {entity} at {decision.Depth.Name()} depth only; {entity} objects belong to the whole organisation and need organization depth."
                    : $"{actor.Name} does not hold the admin privilege {action.Name()} on {entity}.");
        }

        return decision.Allowed ? null : AdminProblem.Forbidden($"{actor.Name} does not hold the admin privilege {action.Name()} on {entity}.");
    }

    /// <summary>May the caller do <paramref name="action"/> on an object of <paramref name="entity"/> that belongs to this business unit?</summary>
    public AdminProblem? Require(string entity, CrmAction action, string? businessUnitId)
    {
        if (!Covers(entity, action, businessUnitId))
        {
            var unit = businessUnitId is null ? "no business unit" : $"business unit '{BusinessUnitName(businessUnitId)}'";
            return AdminProblem.Forbidden($"{actor.Name} does not hold {action.Name()} on {entity} at a depth that covers {unit}.");
        }

        return null;
    }

    public bool Covers(string entity, CrmAction action, string? businessUnitId)
    {
        var entityIndex = snapshot.EntityIndex(entity);
        if (entityIndex < 0)
        {
            return false;
        }

        if (SystemEntities.IsOrganizationWide(entity))
        {
            return Require(entity, action) is null;
        }

        // Admin objects have no owner: "own" depth never covers them, business-unit depths compare the object's unit.
        var record = new RecordRef(null, null, PrincipalKind.User, businessUnitId ?? RootId);
        return snapshot.Check(caller, entityIndex, action, record).Allowed;
    }

    /// <summary>Organisation-wide objects (roles, field security profiles, clients) belong to the root business unit.</summary>
    public string RootId => snapshot.BusinessUnits[snapshot.RootBusinessUnit].Id;

    /// <summary>
    /// Nobody grants what they do not hold (Dynamics 365 privilege escalation rule): every privilege of the role must be
    /// held by the caller at the same or a greater depth.
    /// </summary>
    public AdminProblem? RequireHolds(RoleInfo role)
    {
        foreach (var grant in role.Definition.Privileges)
        {
            if (RequireHolds(grant.Entity, grant.Action, grant.Depth, $"role '{role.Name}'") is { } problem)
            {
                return problem;
            }
        }

        return null;
    }

    public AdminProblem? RequireHolds(string entity, CrmAction action, Depth depth, string what)
    {
        var index = snapshot.EntityIndex(entity);
        var held = index < 0 ? Depth.None : snapshot.DepthOf(caller, index, action);
        return held >= depth
            ? null
            : AdminProblem.Forbidden($"{actor.Name} cannot grant {entity}:{action.Name()} at {depth.Name()} depth through {what}: they hold it at {held.Name()} depth only.");
    }

    /// <summary>Field grants likewise: a profile may give no more on a field than the caller holds on it.</summary>
    public AdminProblem? RequireHolds(FieldInfo field, FieldGrant grant, string what)
    {
        var held = (FieldGrant)snapshot.Classes[CallerInfo.Class].FieldGrants[field.Index];
        if (!field.IsSecured || held >= grant)
        {
            return null;
        }

        return AdminProblem.Forbidden($"{actor.Name} cannot grant {grant.Name()} on {snapshot.Entities[field.Entity].Name}.{field.Name} through {what}: they hold {held.Name()} only.");
    }

    /// <summary>A field security profile handed out (through a team) may give no more on any field than the caller holds.</summary>
    public AdminProblem? RequireHolds(FieldProfileInfo profile)
    {
        foreach (var field in snapshot.FieldTable)
        {
            if (profile.Grants[field.Index] is var grant and > 0 && RequireHolds(field, (FieldGrant)grant, $"field security profile '{profile.Name}'") is { } problem)
            {
                return problem;
            }
        }

        return null;
    }

    /// <summary>No one edits their own roles, teams or business unit: that is the shortest path to privilege escalation.</summary>
    public AdminProblem? RequireNotSelf(string userId, string what) =>
        userId == CallerInfo.Id
            ? AdminProblem.Forbidden($"{actor.Name} cannot change their own {what}; another admin must do it.")
            : null;

    public string BusinessUnitName(string id) => snapshot.BusinessUnitIndex(id) is var i and >= 0 ? snapshot.BusinessUnits[i].Name : id;
}
