using System.Collections.Frozen;
using CrmSecurity.CrmAuthorization;

namespace CrmSecurity.Identity.Authorization.Model;

// The indexed, immutable parts of a snapshot. Everything is addressed by small integers (entity, field, role, team,
// profile, user, business unit index) so a decision is a few array reads; names are kept for explanations.

internal sealed class EntityInfo(int index, string name, string displayName, bool isSystem, int fieldStart, int fieldCount, FrozenDictionary<string, int> fieldIndex)
{
    public int Index { get; } = index;

    public string Name { get; } = name;

    public string DisplayName { get; } = displayName;

    public bool IsSystem { get; } = isSystem;

    /// <summary>Index of the entity's first field in the snapshot's field table.</summary>
    public int FieldStart { get; } = fieldStart;

    public int FieldCount { get; } = fieldCount;

    /// <summary>Field name to global field index.</summary>
    public FrozenDictionary<string, int> FieldIndex { get; } = fieldIndex;
}

internal sealed class FieldInfo(int index, int entity, FieldDefinition definition)
{
    public int Index { get; } = index;

    public int Entity { get; } = entity;

    public string Name => Definition.Name;

    public FieldDefinition Definition { get; } = definition;

    public bool IsSecured => Definition.IsSecured;
}

/// <summary>A business unit with its place in the tree: pre-order number and the end of its subtree, so "is X under Y" is two comparisons.</summary>
internal sealed class BusinessUnitInfo(int index, string id, string name, int parent)
{
    public int Index { get; } = index;

    public string Id { get; } = id;

    public string Name { get; } = name;

    public int Parent { get; } = parent;

    public int Pre { get; set; }

    /// <summary>One past the pre-order number of the last unit in this unit's subtree.</summary>
    public int End { get; set; }

    public long SubtreeHash { get; set; }

    public bool Contains(BusinessUnitInfo other) => Pre <= other.Pre && other.Pre < End;
}

internal sealed class RoleInfo(int index, RoleDefinition definition, byte[] depths)
{
    public int Index { get; } = index;

    public string Id => Definition.Id;

    public string Name => Definition.Name;

    public RoleDefinition Definition { get; } = definition;

    /// <summary>Depth per (entity, action): <c>entity * 7 + action</c>.</summary>
    public byte[] Depths { get; } = depths;
}

internal sealed class FieldProfileInfo(int index, FieldProfileDefinition definition, byte[] grants)
{
    public int Index { get; } = index;

    public string Id => Definition.Id;

    public string Name => Definition.Name;

    public FieldProfileDefinition Definition { get; } = definition;

    /// <summary>Grant per global field index.</summary>
    public byte[] Grants { get; } = grants;
}

internal sealed class TeamInfo(int index, string id, string name, int businessUnit, int[] members, int[] roles, int[] profiles)
{
    public int Index { get; } = index;

    public string Id { get; } = id;

    public string Name { get; } = name;

    public int BusinessUnit { get; } = businessUnit;

    public int[] Members { get; } = members;

    public int[] Roles { get; } = roles;

    public int[] Profiles { get; } = profiles;
}

internal sealed class UserInfo(int index, UserDefinition definition, int businessUnit, int manager, int[] teams, int[] roles, int[] profiles)
{
    public int Index { get; } = index;

    public string Id => Definition.Id;

    public string UserName => Definition.UserName;

    public string DisplayName => Definition.DisplayName;

    public bool Disabled => Definition.Disabled;

    public UserDefinition Definition { get; } = definition;

    public int BusinessUnit { get; } = businessUnit;

    /// <summary>Manager's user index, or -1.</summary>
    public int Manager { get; } = manager;

    public int[] Teams { get; } = teams;

    public int[] DirectRoles { get; } = roles;

    public int[] DirectProfiles { get; } = profiles;

    /// <summary>Index of the user's access class (shared by every user with the same roles and profiles by the same paths).</summary>
    public int Class { get; set; }

    /// <summary>Users whose records this user reads through the manager hierarchy (within its depth).</summary>
    public int[] Reports { get; set; } = [];

    /// <summary>Hash of everything a decision for this user depends on; a change means a new permission version.</summary>
    public long Fingerprint { get; set; }

    /// <summary>The permission version (<c>perm_ver</c>): the model version at which the fingerprint last changed.</summary>
    public long PermVer { get; set; }
}

/// <summary>Where a user's role comes from: directly (<see cref="Team"/> -1) or through a team.</summary>
internal readonly record struct GrantSource(int Role, int Team);

/// <summary>Where a user's field security profile comes from: directly (<see cref="Team"/> -1) or through a team.</summary>
internal readonly record struct ProfileSource(int Profile, int Team);

/// <summary>
/// Everything that follows from one combination of role sources and profile sources: the effective depth per
/// (entity, action) with the source that gives it, the effective field grants, and the field projection. Users with
/// the same combination share one class, so 10,000 users typically need a few dozen tables.
/// </summary>
internal sealed class AccessClass(GrantSource[] sources, ProfileSource[] profileSources, byte[] depths, short[] depthSource, byte[] fieldGrants, short[] fieldGrantSource, FieldAccess[] projection, string[] roleIds, long fingerprint)
{
    public GrantSource[] Sources { get; } = sources;

    public ProfileSource[] ProfileSources { get; } = profileSources;

    public byte[] Depths { get; } = depths;

    /// <summary>Index into <see cref="Sources"/> of the first source giving the effective depth, or -1.</summary>
    public short[] DepthSource { get; } = depthSource;

    public byte[] FieldGrants { get; } = fieldGrants;

    public short[] FieldGrantSource { get; } = fieldGrantSource;

    /// <summary>Per global field: hidden / masked / read / update.</summary>
    public FieldAccess[] Projection { get; } = projection;

    /// <summary>Distinct role ids the class holds (the <c>role</c> claim).</summary>
    public string[] RoleIds { get; } = roleIds;

    public long Fingerprint { get; } = fingerprint;
}

/// <summary>A share stored in the service, resolved to indexes.</summary>
internal sealed class ShareInfo(int index, ShareDefinition definition, int entity, int principal, ActionSet actions, int businessUnit)
{
    public int Index { get; } = index;

    public ShareDefinition Definition { get; } = definition;

    public int Entity { get; } = entity;

    public PrincipalKind Kind => Definition.PrincipalKind;

    /// <summary>User or team index.</summary>
    public int Principal { get; } = principal;

    public ActionSet Actions { get; } = actions;

    /// <summary>The business unit the record was in when it was shared, or -1 for a share without a location (it grants nothing).</summary>
    public int BusinessUnit { get; } = businessUnit;

    public bool IsBound => BusinessUnit >= 0;

    /// <summary>
    /// Whether the record the CRM app describes is where the share was granted: the same business unit and, for a share
    /// granted through ownership, the same owner. A record sent without a business unit matches no share (deny by default).
    /// </summary>
    public bool Locates(in RecordRef record, BusinessUnitInfo[] units) =>
        BusinessUnit >= 0
        && string.Equals(units[BusinessUnit].Id, record.BusinessUnit, StringComparison.Ordinal)
        && (Definition.RecordOwner is not { } owner
            || (record.OwnerKind == Definition.RecordOwnerKind && string.Equals(owner, record.Owner, StringComparison.Ordinal)));
}

/// <summary>A set of actions as bits (bit n = <see cref="CrmAction"/> n).</summary>
[Flags]
internal enum ActionSet : byte
{
    None = 0,
    Create = 1 << 0,
    Read = 1 << 1,
    Update = 1 << 2,
    Delete = 1 << 3,
    Assign = 1 << 4,
    Share = 1 << 5,
    Export = 1 << 6,
}

internal static class ActionSets
{
    public static ActionSet Of(CrmAction action) => (ActionSet)(1 << (int)action);

    public static ActionSet Of(IEnumerable<CrmAction> actions) => actions.Aggregate(ActionSet.None, (set, action) => set | Of(action));

    public static bool Has(this ActionSet set, CrmAction action) => ((int)set & (1 << (int)action)) != 0;

    public static IEnumerable<CrmAction> Actions(this ActionSet set) => CrmNames.Actions.Where(action => set.Has(action));
}
