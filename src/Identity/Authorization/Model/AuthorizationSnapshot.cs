using System.Collections.Frozen;
using CrmSecurity.CrmAuthorization;

namespace CrmSecurity.Identity.Authorization.Model;

/// <summary>
/// One immutable version of the authorization model, indexed for decisions. Made by
/// <see cref="AuthorizationModelBuilder"/>; swapped as a whole when an admin changes something, so a decision never
/// sees half a change. Thread-safe: nothing in it changes after construction.
/// </summary>
/// <remarks>
/// The hot path (<see cref="Check(int, int, CrmAction, in RecordRef)"/> and <see cref="Fields(int, int)"/>) reads
/// precomputed per-class tables and allocates nothing. Lookups by id go through frozen dictionaries.
/// </remarks>
internal sealed partial class AuthorizationSnapshot
{
    private readonly FrozenDictionary<string, int> _entityIndex;
    private readonly FrozenDictionary<string, int> _businessUnitIndex;
    private readonly FrozenDictionary<string, int> _userIndex;
    private readonly FrozenDictionary<string, int> _teamIndex;
    private readonly FrozenDictionary<string, int> _roleIndex;
    private readonly FrozenDictionary<string, int> _profileIndex;
    private readonly FrozenDictionary<string, int> _clientUserIndex;
    private readonly FrozenDictionary<string, int[]>[] _storedShares;
    private readonly FieldAccess[] _noFields;

    internal AuthorizationSnapshot(
        long version,
        OrganizationSettings organization,
        EntityInfo[] entities,
        FieldInfo[] fields,
        BusinessUnitInfo[] businessUnits,
        int rootBusinessUnit,
        RoleInfo[] roles,
        FieldProfileInfo[] profiles,
        TeamInfo[] teams,
        UserInfo[] users,
        AccessClass[] classes,
        ShareInfo[] shares)
    {
        Version = version;
        Organization = organization;
        Entities = entities;
        FieldTable = fields;
        BusinessUnits = businessUnits;
        RootBusinessUnit = rootBusinessUnit;
        Roles = roles;
        Profiles = profiles;
        Teams = teams;
        Users = users;
        Classes = classes;
        Shares = shares;
        _entityIndex = entities.ToFrozenDictionary(e => e.Name, e => e.Index, StringComparer.Ordinal);
        _businessUnitIndex = businessUnits.ToFrozenDictionary(b => b.Id, b => b.Index, StringComparer.Ordinal);
        _userIndex = users.ToFrozenDictionary(u => u.Id, u => u.Index, StringComparer.Ordinal);
        _teamIndex = teams.ToFrozenDictionary(t => t.Id, t => t.Index, StringComparer.Ordinal);
        _roleIndex = roles.ToFrozenDictionary(r => r.Id, r => r.Index, StringComparer.Ordinal);
        _profileIndex = profiles.ToFrozenDictionary(p => p.Id, p => p.Index, StringComparer.Ordinal);
        _clientUserIndex = users.Where(u => u.Definition.ApplicationClientId is not null)
            .ToFrozenDictionary(u => u.Definition.ApplicationClientId!, u => u.Index, StringComparer.Ordinal);
        _noFields = new FieldAccess[entities.Length == 0 ? 0 : entities.Max(e => e.FieldCount)];
        _storedShares = [.. entities.Select(e => shares.Where(s => s.Entity == e.Index)
            .GroupBy(s => s.Definition.RecordId, StringComparer.Ordinal)
            .ToFrozenDictionary(g => g.Key, g => g.Select(s => s.Index).ToArray(), StringComparer.Ordinal))];
    }

    /// <summary>The model version: it increments with every admin change.</summary>
    public long Version { get; }

    public OrganizationSettings Organization { get; }

    public EntityInfo[] Entities { get; }

    public FieldInfo[] FieldTable { get; }

    public BusinessUnitInfo[] BusinessUnits { get; }

    public int RootBusinessUnit { get; }

    public RoleInfo[] Roles { get; }

    public FieldProfileInfo[] Profiles { get; }

    public TeamInfo[] Teams { get; }

    public UserInfo[] Users { get; }

    public AccessClass[] Classes { get; }

    public ShareInfo[] Shares { get; }

    public int EntityIndex(string name) => _entityIndex.TryGetValue(name, out var index) ? index : -1;

    public int UserIndex(string id) => _userIndex.TryGetValue(id, out var index) ? index : -1;

    public int BusinessUnitIndex(string id) => _businessUnitIndex.TryGetValue(id, out var index) ? index : -1;

    public int TeamIndex(string id) => _teamIndex.TryGetValue(id, out var index) ? index : -1;

    public int RoleIndex(string id) => _roleIndex.TryGetValue(id, out var index) ? index : -1;

    public int ProfileIndex(string id) => _profileIndex.TryGetValue(id, out var index) ? index : -1;

    /// <summary>The application user a client acts as (Dynamics "application user"), or -1.</summary>
    public int UserIndexOfClient(string clientId) => _clientUserIndex.TryGetValue(clientId, out var index) ? index : -1;

    /// <summary>
    /// The user a token acts as, or -1: a user's token (<c>sub</c> a user id) acts as that user; a client's own token
    /// (client credentials: <c>sub</c> = <c>client_id</c>) as the client's application user. The one place this is decided.
    /// </summary>
    public int CallerIndex(string? subject, string? clientId) => subject is null ? -1
        : string.Equals(subject, clientId, StringComparison.Ordinal) ? UserIndexOfClient(subject)
        : UserIndex(subject);

    public UserInfo? User(string id) => _userIndex.TryGetValue(id, out var index) ? Users[index] : null;

    public EntityInfo? Entity(string name) => _entityIndex.TryGetValue(name, out var index) ? Entities[index] : null;

    /// <summary>The effective depth a user holds for an action on an entity (<see cref="Depth.None"/> for unknown or disabled users).</summary>
    public Depth DepthOf(int user, int entity, CrmAction action)
    {
        var info = Users[user];
        return info.Disabled ? Depth.None : (Depth)Classes[info.Class].Depths[(entity * CrmNames.ActionCount) + (int)action];
    }

    /// <summary>Check by ids and names (one dictionary lookup each for user and entity).</summary>
    public Decision Check(string userId, string entity, CrmAction action, in RecordRef record)
    {
        if (!_userIndex.TryGetValue(userId, out var user))
        {
            return Decision.Deny(DecisionBasis.UnknownUser, action: action);
        }

        if (!_entityIndex.TryGetValue(entity, out var entityIndex))
        {
            return Decision.Deny(DecisionBasis.UnknownEntity, user, action: action);
        }

        return Check(user, entityIndex, action, record);
    }

    /// <summary>Whether the user holds the privilege at any depth (no record: "may this user read contacts at all?").</summary>
    public Decision CheckEntity(int user, int entity, CrmAction action)
    {
        var info = Users[user];
        if (info.Disabled)
        {
            return Decision.Deny(DecisionBasis.DisabledUser, user, entity, action);
        }

        var access = Classes[info.Class];
        var cell = (entity * CrmNames.ActionCount) + (int)action;
        var depth = (Depth)access.Depths[cell];
        return depth == Depth.None
            ? Decision.Deny(DecisionBasis.NoPrivilege, user, entity, action)
            : new Decision(DecisionBasis.Privilege, user, entity, action, depth, access.DepthSource[cell], 0, 0);
    }

    /// <summary>
    /// May <paramref name="user"/> do <paramref name="action"/> to this record of <paramref name="entity"/>? Deny by default;
    /// access is the union of the user's roles (direct and through teams), the record's shares and the manager hierarchy.
    /// </summary>
    public Decision Check(int user, int entity, CrmAction action, in RecordRef record)
    {
        var info = Users[user];
        if (info.Disabled)
        {
            return Decision.Deny(DecisionBasis.DisabledUser, user, entity, action);
        }

        var access = Classes[info.Class];
        var cell = (entity * CrmNames.ActionCount) + (int)action;
        var depth = (Depth)access.Depths[cell];
        var source = access.DepthSource[cell];

        // As in Dynamics 365, shares and the hierarchy only widen a privilege the user holds at some depth: a user
        // without the privilege gets nothing from a share (deny by default).
        if (depth == Depth.None)
        {
            return Decision.Deny(DecisionBasis.NoPrivilege, user, entity, action);
        }

        if (depth == Depth.Organization)
        {
            return new Decision(DecisionBasis.Privilege, user, entity, action, depth, source, 0, 0);
        }

        // Every depth includes the user's own records, and records owned by a team the user is in.
        if (record.Owner is { } owner && (record.OwnerKind == PrincipalKind.User ? string.Equals(owner, info.Id, StringComparison.Ordinal) : IsMember(info, owner)))
        {
            return new Decision(DecisionBasis.Owner, user, entity, action, depth, source, 0, 0);
        }

        if (depth >= Depth.BusinessUnit && record.BusinessUnit is { } unitId && _businessUnitIndex.TryGetValue(unitId, out var unit))
        {
            var own = BusinessUnits[info.BusinessUnit];
            if (unit == info.BusinessUnit || (depth == Depth.BusinessUnitAndChildren && own.Contains(BusinessUnits[unit])))
            {
                return new Decision(DecisionBasis.Privilege, user, entity, action, depth, source, 0, 0);
            }
        }

        if (record.Shares is { } shares)
        {
            for (var i = 0; i < shares.Length; i++)
            {
                ref readonly var share = ref shares[i];
                if (share.Actions.Has(action) && (share.Kind == PrincipalKind.User ? string.Equals(share.Principal, info.Id, StringComparison.Ordinal) : IsMember(info, share.Principal)))
                {
                    return new Decision(DecisionBasis.Share, user, entity, action, depth, source, i, 0);
                }
            }
        }

        // A stored share is bound to where the record was when it was shared (red-team finding 2): it applies only when
        // the CRM app places the record there, so claiming another business unit at share time gains nothing.
        if (record.Id is { } recordId && record.BusinessUnit is not null && _storedShares[entity].TryGetValue(recordId, out var stored))
        {
            foreach (var index in stored)
            {
                var share = Shares[index];
                if (share.Actions.Has(action) && share.Locates(record, BusinessUnits)
                    && (share.Kind == PrincipalKind.User ? share.Principal == user : Array.IndexOf(info.Teams, share.Principal) >= 0))
                {
                    return new Decision(DecisionBasis.Share, user, entity, action, depth, source, -1 - index, 0);
                }
            }
        }

        // Manager hierarchy: read only, up to the configured number of levels above the owner.
        if (action == CrmAction.Read && Organization.ManagerHierarchy && record.OwnerKind == PrincipalKind.User
            && record.Owner is { } reportId && _userIndex.TryGetValue(reportId, out var report))
        {
            var manager = Users[report].Manager;
            for (var level = 1; manager >= 0 && level <= Organization.ManagerHierarchyDepth; level++)
            {
                if (manager == user)
                {
                    return new Decision(DecisionBasis.Hierarchy, user, entity, action, depth, source, 0, (byte)level);
                }

                manager = Users[manager].Manager;
            }
        }

        return new Decision(DecisionBasis.OutsideDepth, user, entity, action, depth, source, 0, 0);
    }

    /// <summary>
    /// Per field of the entity, in declaration order: hidden, masked, read or update. Assumes the record itself is
    /// readable (check that first); a user who cannot read the entity at all gets every field hidden.
    /// </summary>
    public ReadOnlySpan<FieldAccess> Fields(int user, int entity)
    {
        var info = Users[user];
        var e = Entities[entity];
        return info.Disabled
            ? _noFields.AsSpan(0, e.FieldCount)
            : Classes[info.Class].Projection.AsSpan(e.FieldStart, e.FieldCount);
    }

    /// <summary>The access a user has to one field.</summary>
    public FieldAccess FieldAccessOf(int user, int field)
    {
        var info = Users[user];
        return info.Disabled ? FieldAccess.Hidden : Classes[info.Class].Projection[field];
    }

    public bool IsMember(UserInfo user, string teamId) =>
        _teamIndex.TryGetValue(teamId, out var team) && Array.IndexOf(user.Teams, team) >= 0;

    /// <summary>The role ids a user holds, directly or through teams (the token's <c>role</c> claim).</summary>
    public IReadOnlyList<string> RolesOf(int user) => Classes[Users[user].Class].RoleIds;
}
