using System.Text.Json.Serialization;

namespace CrmSecurity.CrmAuthorization;

/// <summary>A CRM record as the decision needs it: who owns it, which business unit it is in, and whom it is shared with.</summary>
public sealed record CrmRecord
{
    /// <summary>The record's id; with it, shares stored in the service apply too.</summary>
    [JsonPropertyName("id")]
    public string? Id { get; init; }

    /// <summary>The owner: a user id (<c>sub</c>) or, with <see cref="OwnerKind"/> team, a team id.</summary>
    [JsonPropertyName("owner")]
    public string? Owner { get; init; }

    /// <summary><c>user</c> (default) or <c>team</c>.</summary>
    [JsonPropertyName("owner_kind")]
    public string? OwnerKind { get; init; }

    /// <summary>The owning business unit's id.</summary>
    [JsonPropertyName("business_unit")]
    public string? BusinessUnit { get; init; }

    /// <summary>Shares the CRM app keeps with its records (in addition to shares stored in the service).</summary>
    [JsonPropertyName("shares")]
    public IReadOnlyList<CrmShare>? Shares { get; init; }
}

/// <summary>One record shared with one user or team, for some actions.</summary>
public sealed record CrmShare
{
    /// <summary>The user id or team id the record is shared with.</summary>
    [JsonPropertyName("principal")]
    public required string Principal { get; init; }

    /// <summary><c>user</c> or <c>team</c>.</summary>
    [JsonPropertyName("kind")]
    public string Kind { get; init; } = "user";

    /// <summary>Action names the share grants (<c>read</c>, <c>update</c>, ...).</summary>
    [JsonPropertyName("actions")]
    public required IReadOnlyList<string> Actions { get; init; }
}

/// <summary>Body of <c>POST /authz/v1/check</c>.</summary>
public sealed record CheckRequest
{
    /// <summary>The user asking (their <c>sub</c>).</summary>
    [JsonPropertyName("user_id")]
    public required string UserId { get; init; }

    /// <summary>Entity logical name (<c>contact</c>).</summary>
    [JsonPropertyName("entity")]
    public required string Entity { get; init; }

    /// <summary>Action name (<c>read</c>).</summary>
    [JsonPropertyName("action")]
    public required string Action { get; init; }

    /// <summary>The record; without one, the decision is whether the user holds the privilege at any depth.</summary>
    [JsonPropertyName("record")]
    public CrmRecord? Record { get; init; }

    /// <summary>The <c>perm_ver</c> of the user's token, when the app has it: a newer one than the service holds makes it reload first.</summary>
    [JsonPropertyName("perm_ver")]
    public long? PermVer { get; init; }
}

/// <summary>A named thing (role, team, business unit, field security profile, user) in an explanation.</summary>
public sealed record NamedRef(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("name")] string Name);

/// <summary>The answer of a check, with the reason in words and in parts.</summary>
public sealed record CheckResponse
{
    /// <summary>Whether the action is allowed.</summary>
    [JsonPropertyName("allowed")]
    public required bool Allowed { get; init; }

    /// <summary>
    /// What decided: <c>privilege</c>, <c>owner</c>, <c>share</c>, <c>hierarchy</c>; or, denied, <c>no_privilege</c>,
    /// <c>outside_depth</c>, <c>unknown_user</c>, <c>disabled_user</c>, <c>unknown_entity</c>.
    /// </summary>
    [JsonPropertyName("basis")]
    public required string Basis { get; init; }

    /// <summary>One sentence a security admin can read.</summary>
    [JsonPropertyName("reason")]
    public required string Reason { get; init; }

    /// <summary>The role whose privilege decided (or the strongest the user holds, when denied for depth).</summary>
    [JsonPropertyName("role")]
    public NamedRef? Role { get; init; }

    /// <summary>The team the role came through, if not assigned directly.</summary>
    [JsonPropertyName("via_team")]
    public NamedRef? ViaTeam { get; init; }

    /// <summary>The depth of that privilege.</summary>
    [JsonPropertyName("depth")]
    public string? Depth { get; init; }

    /// <summary>The share that decided.</summary>
    [JsonPropertyName("share")]
    public CrmShare? Share { get; init; }

    /// <summary>For hierarchy: how many levels above the owner the user is.</summary>
    [JsonPropertyName("manager_levels")]
    public int? ManagerLevels { get; init; }

    /// <summary>The user's current permission version in the service.</summary>
    [JsonPropertyName("perm_ver")]
    public long PermVer { get; init; }

    /// <summary>The model version the decision was made on.</summary>
    [JsonPropertyName("model_version")]
    public long ModelVersion { get; init; }

    /// <summary>True when the request's <c>perm_ver</c> is older than the user's: the token's role claims are out of date (the decision is not).</summary>
    [JsonPropertyName("token_stale")]
    public bool TokenStale { get; init; }

    /// <summary>
    /// What the app must do before acting on this allow, e.g. <c>{"type":"step_up","value":"mfa"}</c> while the user has an
    /// open critical finding; absent when nothing is asked.
    /// </summary>
    [JsonPropertyName("obligations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<DecisionObligation>? Obligations { get; init; }
}

/// <summary>Something an allowed decision obliges the app to do first.</summary>
public sealed record DecisionObligation
{
    /// <summary><c>step_up</c>: re-authenticate the user with <see cref="Value"/> (<c>mfa</c>) before acting.</summary>
    [JsonPropertyName("type")]
    public required string Type { get; init; }

    /// <summary>The obligation's argument (for <c>step_up</c>, the factor).</summary>
    [JsonPropertyName("value")]
    public string? Value { get; init; }

    /// <summary>Why, in words (the finding that asks for it).</summary>
    [JsonPropertyName("reason")]
    public required string Reason { get; init; }
}

/// <summary>One field of <c>GET /authz/v1/users/{id}/fields/{entity}</c>.</summary>
public sealed record FieldDecision(
    [property: JsonPropertyName("access")] string Access,
    [property: JsonPropertyName("sensitivity")] string Sensitivity,
    [property: JsonPropertyName("mask")] string Mask);

/// <summary>Per field: hidden, masked, read or update.</summary>
public sealed record FieldsResponse
{
    /// <summary>Entity logical name.</summary>
    [JsonPropertyName("entity")]
    public required string Entity { get; init; }

    /// <summary>Field name to decision, in declaration order.</summary>
    [JsonPropertyName("fields")]
    public required IReadOnlyDictionary<string, FieldDecision> Fields { get; init; }

    /// <summary>The user's current permission version.</summary>
    [JsonPropertyName("perm_ver")]
    public long PermVer { get; init; }

    /// <summary>The model version.</summary>
    [JsonPropertyName("model_version")]
    public long ModelVersion { get; init; }

    /// <summary>True when the request's <c>perm_ver</c> is older than the user's: the token is out of date (the answer is not).</summary>
    [JsonPropertyName("token_stale")]
    public bool TokenStale { get; init; }
}

/// <summary>
/// Which records of an entity a user may act on, for a WHERE clause: every record (<see cref="All"/>), or those
/// owned by one of <see cref="Owners"/>, in one of <see cref="BusinessUnits"/>, with an id and location in
/// <see cref="SharedRecords"/>, or shared (in the app's own share table) with one of <see cref="Principals"/>.
/// </summary>
public sealed record FilterResponse
{
    /// <summary>Entity logical name.</summary>
    [JsonPropertyName("entity")]
    public required string Entity { get; init; }

    /// <summary>Action name.</summary>
    [JsonPropertyName("action")]
    public required string Action { get; init; }

    /// <summary>The depth the user holds.</summary>
    [JsonPropertyName("depth")]
    public required string Depth { get; init; }

    /// <summary>No restriction: every record.</summary>
    [JsonPropertyName("all")]
    public bool All { get; init; }

    /// <summary>Nothing at all: the user holds no privilege (not even shares count).</summary>
    [JsonPropertyName("none")]
    public bool None { get; init; }

    /// <summary>Business unit ids whose records are visible.</summary>
    [JsonPropertyName("business_units")]
    public IReadOnlyList<string> BusinessUnits { get; init; } = [];

    /// <summary>Owner ids (the user, the user's teams, and for read the user's reports) whose records are visible.</summary>
    [JsonPropertyName("owners")]
    public IReadOnlyList<string> Owners { get; init; } = [];

    /// <summary>
    /// Records shared through the service with the user or the user's teams for this action, each with the business unit
    /// (and owner, when named) it was shared at: match the id and the location, never the id alone.
    /// </summary>
    [JsonPropertyName("shared_records")]
    public IReadOnlyList<SharedRecord> SharedRecords { get; init; } = [];

    /// <summary>The user's id and team ids, to match an app's own share table.</summary>
    [JsonPropertyName("principals")]
    public IReadOnlyList<string> Principals { get; init; } = [];

    /// <summary>A parameterised SQL WHERE clause over columns <c>owner_id</c>, <c>business_unit_id</c> and <c>id</c>, as an example.</summary>
    [JsonPropertyName("sql_example")]
    public string? SqlExample { get; init; }

    /// <summary>The user's current permission version.</summary>
    [JsonPropertyName("perm_ver")]
    public long PermVer { get; init; }

    /// <summary>The model version.</summary>
    [JsonPropertyName("model_version")]
    public long ModelVersion { get; init; }

    /// <summary>True when the request's <c>perm_ver</c> is older than the user's: the token is out of date (the answer is not).</summary>
    [JsonPropertyName("token_stale")]
    public bool TokenStale { get; init; }
}

/// <summary>One way a user reaches something: a role (directly or via a team), a field security profile, a share, ownership or the hierarchy.</summary>
public sealed record AccessPathResponse
{
    /// <summary><c>role</c>, <c>role_via_team</c>, <c>field_profile</c>, <c>field_profile_via_team</c>, <c>share</c>, <c>owner</c>, <c>hierarchy</c>.</summary>
    [JsonPropertyName("kind")]
    public required string Kind { get; init; }

    /// <summary>The path in words.</summary>
    [JsonPropertyName("text")]
    public required string Text { get; init; }

    /// <summary>The role on the path.</summary>
    [JsonPropertyName("role")]
    public NamedRef? Role { get; init; }

    /// <summary>The team on the path.</summary>
    [JsonPropertyName("team")]
    public NamedRef? Team { get; init; }

    /// <summary>The field security profile on the path.</summary>
    [JsonPropertyName("profile")]
    public NamedRef? Profile { get; init; }

    /// <summary>The depth the role grants.</summary>
    [JsonPropertyName("depth")]
    public string? Depth { get; init; }

    /// <summary>What the field security profile grants.</summary>
    [JsonPropertyName("grant")]
    public string? Grant { get; init; }
}

/// <summary>One user who can access the thing asked about, with every path that grants it.</summary>
public sealed record AccessGrantResponse
{
    /// <summary>The user's id.</summary>
    [JsonPropertyName("user_id")]
    public required string UserId { get; init; }

    /// <summary>The user name.</summary>
    [JsonPropertyName("user_name")]
    public required string UserName { get; init; }

    /// <summary>The depth (entity, record) or field access (field) the user has.</summary>
    [JsonPropertyName("access")]
    public required string Access { get; init; }

    /// <summary>The paths.</summary>
    [JsonPropertyName("paths")]
    public required IReadOnlyList<AccessPathResponse> Paths { get; init; }
}

/// <summary>Answer of the who-can-access endpoints (for auditors).</summary>
public sealed record WhoCanAccessResponse
{
    /// <summary>Entity logical name.</summary>
    [JsonPropertyName("entity")]
    public required string Entity { get; init; }

    /// <summary>The action asked about (absent for a field).</summary>
    [JsonPropertyName("action")]
    public string? Action { get; init; }

    /// <summary>The field asked about.</summary>
    [JsonPropertyName("field")]
    public string? Field { get; init; }

    /// <summary>The record asked about.</summary>
    [JsonPropertyName("record")]
    public CrmRecord? Record { get; init; }

    /// <summary>The users, in model order.</summary>
    [JsonPropertyName("users")]
    public required IReadOnlyList<AccessGrantResponse> Users { get; init; }

    /// <summary>The model version.</summary>
    [JsonPropertyName("model_version")]
    public long ModelVersion { get; init; }
}

/// <summary>Body of <c>POST /authz/v1/who-can-access/{entity}/record</c>.</summary>
public sealed record WhoCanAccessRecordRequest
{
    /// <summary>Action name (<c>read</c>).</summary>
    [JsonPropertyName("action")]
    public required string Action { get; init; }

    /// <summary>The record.</summary>
    [JsonPropertyName("record")]
    public required CrmRecord Record { get; init; }
}
