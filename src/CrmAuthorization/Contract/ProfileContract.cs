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

    /// <summary>
    /// Records shared with the user or the user's teams through the service, each bound to where the record was when it
    /// was shared: a share applies only to a record in that business unit (and with that owner, when one is named).
    /// </summary>
    [JsonPropertyName("shared_records")]
    public IReadOnlyList<SharedRecord> SharedRecords { get; init; } = [];
}

/// <summary>
/// A record shared through the service: its id and the location it was shared at. The share applies only while the record
/// is in <see cref="BusinessUnit"/> (and owned by <see cref="Owner"/>, when one is named), so a business unit claimed at
/// share time that is not the record's own grants nothing.
/// </summary>
public sealed record SharedRecord
{
    /// <summary>The record's id.</summary>
    [JsonPropertyName("record_id")]
    public required string RecordId { get; init; }

    /// <summary>The business unit the record was in when it was shared.</summary>
    [JsonPropertyName("business_unit")]
    public required string BusinessUnit { get; init; }

    /// <summary>The record's owner when it was shared, if the share was granted through ownership; otherwise null.</summary>
    [JsonPropertyName("owner")]
    public string? Owner { get; init; }

    /// <summary><c>user</c> or <c>team</c>, for <see cref="Owner"/>.</summary>
    [JsonPropertyName("owner_kind")]
    public string? OwnerKind { get; init; }

    /// <summary>Action names the share grants.</summary>
    [JsonPropertyName("actions")]
    public IReadOnlyList<string> Actions { get; init; } = [];

    /// <summary>Whether <paramref name="record"/> is where this share was granted.</summary>
    /// <param name="record">The record as the CRM app stores it.</param>
    public bool Locates(CrmRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return string.Equals(record.Id, RecordId, StringComparison.Ordinal)
            && string.Equals(record.BusinessUnit, BusinessUnit, StringComparison.Ordinal)
            && (Owner is null
                || (string.Equals(record.Owner, Owner, StringComparison.Ordinal) && string.Equals(record.OwnerKind ?? "user", OwnerKind ?? "user", StringComparison.Ordinal)));
    }
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
