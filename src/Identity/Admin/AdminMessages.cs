using System.Text.Json.Serialization;

namespace CrmSecurity.Identity.Admin;

// Requests and responses of the admin API. Property names are snake_case like the policy files and the access events;
// an unknown property is refused (400 naming it), so a typo never silently does nothing.

internal sealed record RoleBody(
    [property: JsonPropertyName("id")] string? Id,
    [property: JsonPropertyName("name")] string? Name,
    [property: JsonPropertyName("description")] string? Description,
    [property: JsonPropertyName("privileges")] Dictionary<string, Dictionary<string, string>>? Privileges,
    [property: JsonPropertyName("version")] int? Version);

internal sealed record RoleView(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("privileges")] SortedDictionary<string, SortedDictionary<string, string>> Privileges,
    [property: JsonPropertyName("users")] int Users,
    [property: JsonPropertyName("teams")] int Teams,
    [property: JsonPropertyName("version")] int Version);

internal sealed record PrivilegeBody(
    [property: JsonPropertyName("depth")] string? Depth,
    [property: JsonPropertyName("version")] int? Version);

internal sealed record BusinessUnitBody(
    [property: JsonPropertyName("id")] string? Id,
    [property: JsonPropertyName("name")] string? Name,
    [property: JsonPropertyName("parent")] string? Parent,
    [property: JsonPropertyName("version")] int? Version);

internal sealed record BusinessUnitView(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("parent")] string? Parent,
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("children")] int Children = 0,
    [property: JsonPropertyName("users")] int Users = 0,
    [property: JsonPropertyName("teams")] int Teams = 0);

/// <summary>A unit in the tree, in pre-order (parents before children), with its depth below the root for indentation.</summary>
internal sealed record BusinessUnitNode(BusinessUnitView View, int Level);

internal sealed record TeamBody(
    [property: JsonPropertyName("id")] string? Id,
    [property: JsonPropertyName("name")] string? Name,
    [property: JsonPropertyName("business_unit")] string? BusinessUnit,
    [property: JsonPropertyName("roles")] List<string>? Roles,
    [property: JsonPropertyName("version")] int? Version,
    [property: JsonPropertyName("field_security_profiles")] List<string>? FieldSecurityProfiles = null,
    [property: JsonPropertyName("members")] List<string>? Members = null);

internal sealed record TeamView(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("business_unit")] string BusinessUnit,
    [property: JsonPropertyName("members")] IReadOnlyList<string> Members,
    [property: JsonPropertyName("roles")] IReadOnlyList<string> Roles,
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("field_security_profiles")] IReadOnlyList<string>? FieldSecurityProfiles = null);

/// <summary>The user's manager (a user id the caller may view); an empty string or null clears it. <c>version</c> is the user's ETag.</summary>
internal sealed record ManagerBody(
    [property: JsonPropertyName("manager")] string? Manager,
    [property: JsonPropertyName("version")] string? Version = null);

internal sealed record UserBody(
    [property: JsonPropertyName("user_name")] string? UserName,
    [property: JsonPropertyName("display_name")] string? DisplayName,
    [property: JsonPropertyName("email")] string? Email,
    [property: JsonPropertyName("business_unit")] string? BusinessUnit,
    [property: JsonPropertyName("password")] string? Password,
    [property: JsonPropertyName("application_client_id")] string? ApplicationClientId,
    [property: JsonPropertyName("manager")] string? Manager = null);

/// <summary>
/// A person's own names as the users console edits them: display name and e-mail address (null leaves one as it is).
/// <see cref="Version"/> is the user's concurrency stamp (If-Match, the ETag of <c>GET /admin/api/users/{id}</c>).
/// </summary>
internal sealed record UserProfileBody(
    [property: JsonPropertyName("display_name")] string? DisplayName,
    [property: JsonPropertyName("email")] string? Email,
    [property: JsonPropertyName("version")] string? Version = null);

internal sealed record UserView(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("user_name")] string UserName,
    [property: JsonPropertyName("display_name")] string DisplayName,
    [property: JsonPropertyName("business_unit")] string? BusinessUnit,
    [property: JsonPropertyName("roles")] IReadOnlyList<string> Roles,
    [property: JsonPropertyName("teams")] IReadOnlyList<string> Teams,
    [property: JsonPropertyName("disabled")] bool Disabled,
    [property: JsonPropertyName("locked_out")] bool LockedOut,
    [property: JsonPropertyName("mfa")] bool Mfa,
    [property: JsonPropertyName("version")] string Version,
    [property: JsonPropertyName("zoneinfo")] string? ZoneInfo = null,
    [property: JsonPropertyName("hired")] string? Hired = null,
    [property: JsonPropertyName("terminated")] string? Terminated = null,
    [property: JsonPropertyName("field_security_profiles")] IReadOnlyList<string>? FieldSecurityProfiles = null,
    [property: JsonPropertyName("email")] string? Email = null,
    [property: JsonPropertyName("manager")] string? Manager = null,
    [property: JsonPropertyName("application_client_id")] string? ApplicationClientId = null,
    [property: JsonPropertyName("locked_until")] DateTimeOffset? LockedUntil = null);

/// <summary>The user's time zone, an IANA id (OpenID Connect Core §5.1 <c>zoneinfo</c>); null clears it.</summary>
internal sealed record ZoneInfoBody(
    [property: JsonPropertyName("zoneinfo")] string? ZoneInfo,
    [property: JsonPropertyName("version")] string? Version);

/// <summary>
/// The user's hire and termination dates as calendar days (<c>yyyy-MM-dd</c>); null or absent clears one. Both are set
/// together, so what the body says is what is stored.
/// </summary>
internal sealed record EmploymentBody(
    [property: JsonPropertyName("hired")] string? Hired,
    [property: JsonPropertyName("terminated")] string? Terminated,
    [property: JsonPropertyName("version")] string? Version);

internal sealed record NamesBody(
    [property: JsonPropertyName("roles")] List<string>? Roles,
    [property: JsonPropertyName("teams")] List<string>? Teams,
    [property: JsonPropertyName("business_unit")] string? BusinessUnit,
    [property: JsonPropertyName("reason")] string? Reason,
    [property: JsonPropertyName("version")] string? Version,
    [property: JsonPropertyName("field_security_profiles")] List<string>? FieldSecurityProfiles = null);

internal sealed record FieldProfileBody(
    [property: JsonPropertyName("name")] string? Name,
    [property: JsonPropertyName("description")] string? Description,
    [property: JsonPropertyName("permissions")] Dictionary<string, Dictionary<string, string>>? Permissions,
    [property: JsonPropertyName("version")] int? Version,
    [property: JsonPropertyName("id")] string? Id = null);

internal sealed record FieldProfileView(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("permissions")] SortedDictionary<string, SortedDictionary<string, string>> Permissions,
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("users")] IReadOnlyList<string>? Users = null,
    [property: JsonPropertyName("teams")] IReadOnlyList<string>? Teams = null);

/// <summary>
/// A share request. <c>record_business_unit</c> (required) and <c>record_owner</c> say where the record is; the share is
/// bound to that location and applies only where the CRM app places the record there (red-team finding 2).
/// </summary>
internal sealed record ShareBody(
    [property: JsonPropertyName("entity")] string? Entity,
    [property: JsonPropertyName("record_id")] string? RecordId,
    [property: JsonPropertyName("record_business_unit")] string? RecordBusinessUnit,
    [property: JsonPropertyName("principal_kind")] string? PrincipalKind,
    [property: JsonPropertyName("principal_id")] string? PrincipalId,
    [property: JsonPropertyName("actions")] List<string>? Actions,
    [property: JsonPropertyName("record_owner")] string? RecordOwner = null,
    [property: JsonPropertyName("record_owner_kind")] string? RecordOwnerKind = null);

/// <summary>A record share as the admin list shows it; <c>record_business_unit</c> is null for a share made before locations were kept.</summary>
internal sealed record ShareView(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("entity")] string Entity,
    [property: JsonPropertyName("record_id")] string RecordId,
    [property: JsonPropertyName("record_business_unit")] string? RecordBusinessUnit,
    [property: JsonPropertyName("record_business_unit_name")] string? RecordBusinessUnitName,
    [property: JsonPropertyName("record_owner")] string? RecordOwner,
    [property: JsonPropertyName("principal_kind")] string PrincipalKind,
    [property: JsonPropertyName("principal_id")] string PrincipalId,
    [property: JsonPropertyName("principal_name")] string PrincipalName,
    [property: JsonPropertyName("actions")] IReadOnlyList<string> Actions,
    [property: JsonPropertyName("created_by")] string? CreatedBy);

/// <summary>
/// An OIDC client as the admin API shows it: never its secret or the secret's hash. <c>managed_by</c> is
/// <c>configuration</c> for a client of <c>Identity:Clients</c> (<c>setting</c> names its entry; edits are refused there)
/// and <c>admin</c> for one made at run time.
/// </summary>
internal sealed record ClientView(
    [property: JsonPropertyName("client_id")] string ClientId,
    [property: JsonPropertyName("display_name")] string? DisplayName,
    [property: JsonPropertyName("client_type")] string? ClientType,
    [property: JsonPropertyName("first_party")] bool FirstParty = true,
    [property: JsonPropertyName("redirect_uris")] IReadOnlyList<string>? RedirectUris = null,
    [property: JsonPropertyName("post_logout_redirect_uris")] IReadOnlyList<string>? PostLogoutRedirectUris = null,
    [property: JsonPropertyName("grant_types")] IReadOnlyList<string>? GrantTypes = null,
    [property: JsonPropertyName("scopes")] IReadOnlyList<string>? Scopes = null,
    [property: JsonPropertyName("tenants")] IReadOnlyList<string>? Tenants = null,
    [property: JsonPropertyName("require_pkce")] bool RequirePkce = false,
    [property: JsonPropertyName("require_par")] bool RequirePar = false,
    [property: JsonPropertyName("managed_by")] string ManagedBy = ClientView.Admin,
    [property: JsonPropertyName("setting")] string? Setting = null,
    [property: JsonPropertyName("previous_secret_valid_until")] DateTimeOffset? PreviousSecretValidUntil = null,
    [property: JsonPropertyName("version")] string? Version = null,
    [property: JsonPropertyName("require_dpop")] bool RequireDpop = false)
{
    public const string Admin = "admin";
    public const string Configuration = "configuration";
}

/// <summary>
/// A client to create or the new state of one (PUT replaces every field given; a field left out keeps its value).
/// <c>client_type</c> is <c>confidential</c> (the server makes its secret) or <c>public</c>, fixed at creation.
/// </summary>
internal sealed record ClientBody(
    [property: JsonPropertyName("client_id")] string? ClientId,
    [property: JsonPropertyName("display_name")] string? DisplayName,
    [property: JsonPropertyName("client_type")] string? ClientType,
    [property: JsonPropertyName("first_party")] bool? FirstParty,
    [property: JsonPropertyName("redirect_uris")] List<string>? RedirectUris,
    [property: JsonPropertyName("post_logout_redirect_uris")] List<string>? PostLogoutRedirectUris,
    [property: JsonPropertyName("grant_types")] List<string>? GrantTypes,
    [property: JsonPropertyName("scopes")] List<string>? Scopes,
    [property: JsonPropertyName("tenants")] List<string>? Tenants = null,
    [property: JsonPropertyName("require_pkce")] bool? RequirePkce = null,
    [property: JsonPropertyName("require_par")] bool? RequirePar = null,
    [property: JsonPropertyName("version")] string? Version = null,
    [property: JsonPropertyName("require_dpop")] bool? RequireDpop = null);

/// <summary>How long the secret being replaced keeps working: <c>0</c>, <c>30m</c>, <c>12h</c>, <c>1d</c> (at most 30 days).</summary>
internal sealed record SecretRotationBody(
    [property: JsonPropertyName("overlap")] string? Overlap,
    [property: JsonPropertyName("version")] string? Version = null);

/// <summary>
/// A client whose stored tokens and authorizations were revoked, by its deletion or by incident response (the client
/// kept), and how many: one answer, in the admin API's snake_case, for both.
/// </summary>
internal sealed record ClientRevocationView(
    [property: JsonPropertyName("client_id")] string ClientId,
    [property: JsonPropertyName("tokens_revoked")] long TokensRevoked,
    [property: JsonPropertyName("authorizations_revoked")] long AuthorizationsRevoked);

/// <summary>A client's new secret, shown this once: only its hash is kept.</summary>
internal sealed record ClientSecretView(
    [property: JsonPropertyName("client_id")] string ClientId,
    [property: JsonPropertyName("client_secret")] string? ClientSecret,
    [property: JsonPropertyName("previous_secret_valid_until")] DateTimeOffset? PreviousSecretValidUntil,
    [property: JsonPropertyName("version")] string? Version);

internal sealed record WhoCanAccessView(
    [property: JsonPropertyName("entity")] string Entity,
    [property: JsonPropertyName("action")] string? Action,
    [property: JsonPropertyName("field")] string? Field,
    [property: JsonPropertyName("record_id")] string? RecordId,
    [property: JsonPropertyName("users")] IReadOnlyList<WhoCanAccessUser> Users);

internal sealed record WhoCanAccessUser(
    [property: JsonPropertyName("user_id")] string UserId,
    [property: JsonPropertyName("user_name")] string UserName,
    [property: JsonPropertyName("access")] string Access,
    [property: JsonPropertyName("paths")] IReadOnlyList<string> Paths);

/// <summary>Access-event actions of admin changes (design.md's list); every other admin change is <c>admin_change</c>.</summary>
internal static class AdminEventActions
{
    public const string Assign = "assign";
    public const string Share = "share";
}

/// <summary>Where a password-reset link went and until when it works; never the link itself.</summary>
internal sealed record PasswordResetLinkView(
    [property: JsonPropertyName("sent_to")] string SentTo,
    [property: JsonPropertyName("expires_at")] DateTimeOffset ExpiresAt);
