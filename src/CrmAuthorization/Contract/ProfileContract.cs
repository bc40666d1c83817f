using System.Text.Json.Serialization;

namespace CrmSecurity.CrmAuthorization;

/// <summary>
/// Body of <c>GET /authz/v1/users/{id}/profile</c>: everything a client needs to decide for one user locally, at
/// one permission version (<see cref="PermVer"/>, also the ETag). <see cref="CrmAccessProfile"/> decides on it.
/// </summary>
public sealed record ProfileResponse
{
    /// <summary>The user's id (<c>sub</c>).</summary>
    [JsonPropertyName("user_id")]
    public required string UserId { get; init; }

    /// <summary>The user name.</summary>
    [JsonPropertyName("user_name")]
    public required string UserName { get; init; }

    /// <summary>The user's permission version: a decision cached with it stays right until a token or the service shows a newer one.</summary>
    [JsonPropertyName("perm_ver")]
    public long PermVer { get; init; }

    /// <summary>The model version the profile was made from.</summary>
    [JsonPropertyName("model_version")]
    public long ModelVersion { get; init; }

    /// <summary>A disabled user is denied everything.</summary>
    [JsonPropertyName("disabled")]
    public bool Disabled { get; init; }

    /// <summary>The user's business unit id.</summary>
    [JsonPropertyName("business_unit")]
    public required string BusinessUnit { get; init; }

    /// <summary>Team ids the user is a member of (team-owned records and team shares).</summary>
    [JsonPropertyName("teams")]
    public IReadOnlyList<string> Teams { get; init; } = [];

    /// <summary>Role ids held directly or through teams.</summary>
    [JsonPropertyName("roles")]
    public IReadOnlyList<string> Roles { get; init; } = [];

    /// <summary>User ids whose records this user reads through the manager hierarchy.</summary>
    [JsonPropertyName("reports")]
    public IReadOnlyList<string> Reports { get; init; } = [];

    /// <summary>Per CRM entity: privileges held, field access, and records shared through the service.</summary>
    [JsonPropertyName("entities")]
    public IReadOnlyDictionary<string, EntityProfile> Entities { get; init; } = new Dictionary<string, EntityProfile>();
}

/// <summary>One entity of a <see cref="ProfileResponse"/>.</summary>
public sealed record EntityProfile
{
    /// <summary>Action name to the privilege held (actions without a privilege are absent).</summary>
    [JsonPropertyName("privileges")]
    public IReadOnlyDictionary<string, PrivilegeProfile> Privileges { get; init; } = new Dictionary<string, PrivilegeProfile>();

    /// <summary>Field name to access and mask style, in declaration order.</summary>
    [JsonPropertyName("fields")]
    public IReadOnlyDictionary<string, FieldProfileEntry> Fields { get; init; } = new Dictionary<string, FieldProfileEntry>();

    /// <summary>Record id to the actions shared with the user or the user's teams through the service.</summary>
    [JsonPropertyName("shared_records")]
    public IReadOnlyDictionary<string, IReadOnlyList<string>> SharedRecords { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
}

/// <summary>A privilege held: its depth, the role (and team) that gives it, and the business units it reaches.</summary>
public sealed record PrivilegeProfile
{
    /// <summary>Depth name.</summary>
    [JsonPropertyName("depth")]
    public required string Depth { get; init; }

    /// <summary>The role that gives the depth.</summary>
    [JsonPropertyName("role")]
    public NamedRef? Role { get; init; }

    /// <summary>The team the role comes through, if any.</summary>
    [JsonPropertyName("via_team")]
    public NamedRef? ViaTeam { get; init; }

    /// <summary>Business unit ids the depth reaches (empty for own and organization).</summary>
    [JsonPropertyName("business_units")]
    public IReadOnlyList<string> BusinessUnits { get; init; } = [];
}

/// <summary>A field's access (hidden, masked, read, update) and how to mask it.</summary>
public sealed record FieldProfileEntry(
    [property: JsonPropertyName("access")] string Access,
    [property: JsonPropertyName("mask")] string Mask);
