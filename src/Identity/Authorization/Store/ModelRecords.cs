namespace CrmSecurity.Identity.Authorization.Store;

// The authorization model as rows of the Identity store. Names and enum values are stored as their wire names
// ("business_unit", "read_unmasked") so the tables read like the policy files. Version columns are optimistic
// concurrency tokens: an update that read version 3 fails if someone else wrote version 4 in between.

/// <summary>The one row that holds the model version and the organisation settings; every admin change bumps the version.</summary>
internal sealed class ModelStateRecord
{
    public const int SingletonId = 1;

    public int Id { get; set; } = SingletonId;

    public long Version { get; set; }

    public required string OrganizationName { get; set; }

    public bool ManagerHierarchy { get; set; }

    public int ManagerHierarchyDepth { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }
}

internal sealed class BusinessUnitRecord
{
    public required string Id { get; set; }

    public required string Name { get; set; }

    public string? ParentId { get; set; }

    public int Version { get; set; } = 1;
}

internal sealed class TeamRecord
{
    public required string Id { get; set; }

    public required string Name { get; set; }

    public required string BusinessUnitId { get; set; }

    public int Version { get; set; } = 1;
}

internal sealed class TeamMemberRecord
{
    public required string TeamId { get; set; }

    public required string UserId { get; set; }
}

internal sealed class TeamRoleRecord
{
    public required string TeamId { get; set; }

    public required string RoleId { get; set; }
}

internal sealed class TeamFieldProfileRecord
{
    public required string TeamId { get; set; }

    public required string ProfileId { get; set; }
}

internal sealed class RoleRecord
{
    public required string Id { get; set; }

    public required string Name { get; set; }

    public string Description { get; set; } = "";

    public int Version { get; set; } = 1;
}

internal sealed class RolePrivilegeRecord
{
    public required string RoleId { get; set; }

    public required string Entity { get; set; }

    public required string Action { get; set; }

    public required string Depth { get; set; }
}

internal sealed class UserRoleRecord
{
    public required string UserId { get; set; }

    public required string RoleId { get; set; }
}

internal sealed class FieldProfileRecord
{
    public required string Id { get; set; }

    public required string Name { get; set; }

    public string Description { get; set; } = "";

    public int Version { get; set; } = 1;
}

internal sealed class FieldPermissionRecord
{
    public required string ProfileId { get; set; }

    public required string Entity { get; set; }

    public required string Field { get; set; }

    public required string Grant { get; set; }
}

internal sealed class UserFieldProfileRecord
{
    public required string UserId { get; set; }

    public required string ProfileId { get; set; }
}

/// <summary>
/// One record of a CRM entity shared with a user or team, for some actions (comma-separated names), bound to the record's
/// location when it was shared: its business unit and, for a share granted through ownership, its owner. Rows made before
/// schema version 4 have no location and grant nothing until they are shared again with one.
/// </summary>
internal sealed class ShareRecord
{
    public required string Id { get; set; }

    public required string Entity { get; set; }

    public required string RecordId { get; set; }

    public required string PrincipalKind { get; set; }

    public required string PrincipalId { get; set; }

    public required string Actions { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public required string CreatedBy { get; set; }

    /// <summary>The business unit the record was in when it was shared (null: a share made before locations were kept).</summary>
    public string? RecordBusinessUnit { get; set; }

    /// <summary>The record's owner when the share was granted through ownership, else null.</summary>
    public string? RecordOwner { get; set; }

    /// <summary><c>user</c> or <c>team</c>, for <see cref="RecordOwner"/>.</summary>
    public string? RecordOwnerKind { get; set; }
}
