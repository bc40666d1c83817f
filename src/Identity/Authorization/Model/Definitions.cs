using CrmSecurity.CrmAuthorization;

namespace CrmSecurity.Identity.Authorization.Model;

// The inputs of AuthorizationModelBuilder: plain data read from policy files or database rows. Origin says where a
// definition came from ("policies/authorization/roles.json:14", "database role 'x'") so problems can name it.

internal sealed record EntityDefinition(string Name, string DisplayName, IReadOnlyList<FieldDefinition> Fields, bool IsSystem = false, string? Origin = null);

/// <summary>A field of an entity. Sensitive and secret fields are secured: only field security profiles grant them.</summary>
internal sealed record FieldDefinition(string Name, string DisplayName, Sensitivity Sensitivity, string Mask = MaskStyles.Full, string? Origin = null)
{
    public bool IsSecured => Sensitivity >= Sensitivity.Sensitive;
}

internal static class MaskStyles
{
    public const string Full = "full";
    public const string Email = "email";
    public const string Last4 = "last4";

    public static readonly string[] All = [Full, Email, Last4];
}

internal sealed record PrivilegeGrant(string Entity, CrmAction Action, Depth Depth, string? Origin = null);

internal sealed record RoleDefinition(string Id, string Name, string Description, IReadOnlyList<PrivilegeGrant> Privileges, string? Origin = null);

internal sealed record FieldPermission(string Entity, string Field, FieldGrant Grant, string? Origin = null);

internal sealed record FieldProfileDefinition(string Id, string Name, string Description, IReadOnlyList<FieldPermission> Permissions, string? Origin = null);

internal sealed record BusinessUnitDefinition(string Id, string Name, string? ParentId, string? Origin = null);

internal sealed record TeamDefinition(
    string Id,
    string Name,
    string BusinessUnitId,
    IReadOnlyList<string> Members,
    IReadOnlyList<string> Roles,
    IReadOnlyList<string> FieldProfiles,
    string? Origin = null);

internal sealed record UserDefinition(
    string Id,
    string UserName,
    string DisplayName,
    string? BusinessUnitId,
    string? ManagerId,
    IReadOnlyList<string> Roles,
    IReadOnlyList<string> FieldProfiles,
    bool Disabled = false,
    long PermVer = 0,
    string? ApplicationClientId = null,
    string? Origin = null,
    string? ZoneInfo = null,
    DateOnly? Hired = null,
    DateOnly? Terminated = null);

/// <summary>
/// One record shared with a user or team. The share is bound to the record's location when it was granted: its business
/// unit and, when the granter's right came from owning it, its owner. It matches a record only where the CRM app places
/// the record there (red-team finding 2). A share without a location (made before locations were recorded) grants nothing.
/// </summary>
internal sealed record ShareDefinition(
    string Id,
    string Entity,
    string RecordId,
    PrincipalKind PrincipalKind,
    string PrincipalId,
    IReadOnlyList<CrmAction> Actions,
    string? Origin = null,
    string? RecordBusinessUnit = null,
    string? RecordOwner = null,
    PrincipalKind RecordOwnerKind = PrincipalKind.User,
    string? CreatedBy = null);

/// <summary>Organisation-wide settings: the manager hierarchy (managers read the records their reports own).</summary>
internal sealed record OrganizationSettings(string Name = "Organization", bool ManagerHierarchy = true, int ManagerHierarchyDepth = 3, string? Origin = null)
{
    public const int MaxHierarchyDepth = 10;
}
