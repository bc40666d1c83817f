namespace CrmSecurity.Identity.Authorization.Model;

/// <summary>
/// The service's own objects as entities of the model, so admin permissions are privileges in the same grid a
/// Dynamics 365 admin knows from its "Business Management" tab: <c>read</c> is view, <c>create</c>/<c>update</c>/
/// <c>delete</c> are manage, <c>assign</c> on users and teams is giving roles, teams and field profiles. The depth
/// limits an admin to a business unit (users and teams by their unit; business units by themselves). Objects of the
/// whole organisation (roles, field security profiles, clients, the audit trail) belong to the root unit.
/// </summary>
internal static class SystemEntities
{
    public const string User = "system_user";
    public const string Team = "team";
    public const string BusinessUnit = "business_unit";
    public const string Role = "security_role";
    public const string FieldProfile = "field_security_profile";
    public const string Client = "oidc_client";
    public const string AuditTrail = "audit_trail";

    /// <summary>AuditAnalyzer findings to review: <c>update</c> is reviewing a finding, kept apart from managing roles.</summary>
    public const string Finding = "audit_finding";

    public static readonly EntityDefinition[] All =
    [
        new(User, "User", [], IsSystem: true),
        new(Team, "Team", [], IsSystem: true),
        new(BusinessUnit, "Business unit", [], IsSystem: true),
        new(Role, "Security role", [], IsSystem: true),
        new(FieldProfile, "Field security profile", [], IsSystem: true),
        new(Client, "OIDC client", [], IsSystem: true),
        new(AuditTrail, "Audit trail", [], IsSystem: true),
        new(Finding, "Audit finding", [], IsSystem: true),
    ];

    public static bool IsSystem(string entity) => Array.Exists(All, e => e.Name == entity);

    /// <summary>
    /// Objects of the whole organisation, in no business unit: admin rights on them need organization depth (a business
    /// unit admin who holds update on security_role at business-unit depth still cannot change an organisation-wide role).
    /// </summary>
    public static bool IsOrganizationWide(string entity) => entity is Role or FieldProfile or Client or AuditTrail or Finding;
}
