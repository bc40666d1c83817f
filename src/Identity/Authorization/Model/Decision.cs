using CrmSecurity.CrmAuthorization;

namespace CrmSecurity.Identity.Authorization.Model;

/// <summary>What decided a check. The first four allow; the rest deny.</summary>
internal enum DecisionBasis : byte
{
    /// <summary>A role's privilege at business-unit or organisation depth covers the record.</summary>
    Privilege,

    /// <summary>The user, or a team the user is in, owns the record (any depth from own up).</summary>
    Owner,

    /// <summary>The record is shared with the user or one of the user's teams.</summary>
    Share,

    /// <summary>The user manages (directly or indirectly) the record's owner; managers read their reports' records.</summary>
    Hierarchy,

    /// <summary>No role of the user grants the action on the entity.</summary>
    NoPrivilege,

    /// <summary>The user holds the privilege, but its depth does not reach the record, and no share or hierarchy applies.</summary>
    OutsideDepth,

    UnknownUser,
    DisabledUser,
    UnknownEntity,
}

/// <summary>
/// A record as a check needs it. The strings are compared, never copied; <see cref="Shares"/> is the caller's own array.
/// </summary>
internal readonly record struct RecordRef(string? Id, string? Owner, PrincipalKind OwnerKind, string? BusinessUnit, ShareRef[]? Shares = null)
{
    public static RecordRef OwnedBy(string owner, string businessUnit, string? id = null) => new(id, owner, PrincipalKind.User, businessUnit);
}

/// <summary>A share of the record being checked: one user or team, some actions.</summary>
internal readonly record struct ShareRef(PrincipalKind Kind, string Principal, ActionSet Actions);

/// <summary>
/// The outcome of a check: allowed or not, and the parts of the reason (indexes into the snapshot that made it).
/// A value type with no references, so a check allocates nothing; <see cref="AuthorizationSnapshot.Explain"/>
/// turns it into words when someone asks.
/// </summary>
internal readonly record struct Decision(DecisionBasis Basis, int User, int Entity, CrmAction Action, Depth Depth, short Source, int Share, byte Levels)
{
    public bool Allowed => Basis <= DecisionBasis.Hierarchy;

    /// <summary>Share index: &gt;= 0 into the record's shares, &lt; 0 a stored share (-1 - index).</summary>
    public bool IsStoredShare => Share < 0;

    public static Decision Deny(DecisionBasis basis, int user = -1, int entity = -1, CrmAction action = default) =>
        new(basis, user, entity, action, Depth.None, -1, 0, 0);
}
