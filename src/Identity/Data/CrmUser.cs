using Microsoft.AspNetCore.Identity;

namespace CrmSecurity.Identity.Data;

/// <summary>
/// A person who signs in. Besides ASP.NET Core Identity's columns it carries what the CRM authorization model
/// needs: the tenant, the business unit, and a permission-model version that changes whenever the user's
/// roles or grants change (tokens carry it as <c>perm_ver</c> so a CRM app can tell a stale decision cache).
/// </summary>
internal sealed class CrmUser : IdentityUser
{
    public string? DisplayName { get; set; }

    public string Tenant { get; set; } = "default";

    public string? BusinessUnit { get; set; }

    public long PermissionModelVersion { get; set; } = 1;

    /// <summary>Hash of everything the user's decisions depend on at <see cref="PermissionModelVersion"/>; a new hash means a new version.</summary>
    public long PermissionFingerprint { get; set; }

    /// <summary>The user's manager (managers read their reports' records).</summary>
    public string? ManagerId { get; set; }

    /// <summary>
    /// Set for an application user: the OIDC client that acts as this user (Dynamics 365 "application user"). Admin calls
    /// made with that client's own tokens get this user's admin permissions. Application users cannot sign in.
    /// </summary>
    public string? ApplicationClientId { get; set; }

    /// <summary>
    /// The user's time zone as an IANA id (OpenID Connect Core §5.1 <c>zoneinfo</c>, e.g. <c>Europe/Paris</c>); null for
    /// unknown. The analyzer judges "odd hours" in this zone.
    /// </summary>
    public string? ZoneInfo { get; set; }

    /// <summary>
    /// The day the person was hired, null when unknown. The analyzer compares new hires with their peers more gently and
    /// needs the date to tell a first week from a change of habit (design.md directory snapshot: <c>hired</c>).
    /// </summary>
    public DateOnly? Hired { get; set; }

    /// <summary>
    /// The person's last working day, null while employed. Access after it is the analyzer's leaver signal (design.md
    /// directory snapshot: <c>terminated</c>); it does not disable the account, which stays an explicit admin action.
    /// </summary>
    public DateOnly? Terminated { get; set; }

    /// <summary>
    /// The id the provisioning client (an HR system or another directory) knows the person by: SCIM's <c>externalId</c>
    /// (RFC 7643 §3.1), set by that client and never by this service; null for people not provisioned through SCIM.
    /// </summary>
    public string? ExternalId { get; set; }

    /// <summary>The person's department (RFC 7643 §4.3 enterprise user extension <c>department</c>); null when unknown.</summary>
    public string? Department { get; set; }

    /// <summary>A disabled user cannot sign in and holds no valid token or session.</summary>
    public bool IsDisabled { get; set; }
}
