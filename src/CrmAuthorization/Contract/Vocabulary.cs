using System.Diagnostics.CodeAnalysis;

namespace CrmSecurity.CrmAuthorization;

/// <summary>What a privilege allows on an entity's records (Dynamics 365 privilege types; Salesforce object permissions).</summary>
public enum CrmAction : byte
{
    /// <summary>Create records.</summary>
    Create = 0,

    /// <summary>Read records.</summary>
    Read = 1,

    /// <summary>Change records.</summary>
    Update = 2,

    /// <summary>Delete records.</summary>
    Delete = 3,

    /// <summary>Give a record to another owner.</summary>
    Assign = 4,

    /// <summary>Share a record with a user or team.</summary>
    Share = 5,

    /// <summary>Export records in bulk (reports, spreadsheets).</summary>
    Export = 6,
}

/// <summary>
/// How far a privilege reaches, from nothing to the whole organisation. The Dynamics 365 names are in brackets:
/// none, own (User), business_unit (Business Unit), business_unit_and_children (Parent: Child Business Units),
/// organization (Organization). Each depth includes the ones below it.
/// </summary>
public enum Depth : byte
{
    /// <summary>No access.</summary>
    None = 0,

    /// <summary>Records the user owns, or a team the user is in owns.</summary>
    Own = 1,

    /// <summary>Records in the user's business unit (and the user's own).</summary>
    BusinessUnit = 2,

    /// <summary>Records in the user's business unit and every unit below it.</summary>
    BusinessUnitAndChildren = 3,

    /// <summary>Every record.</summary>
    Organization = 4,
}

/// <summary>What a user sees of one field: nothing, a mask, the value, or the value and the right to change it.</summary>
public enum FieldAccess : byte
{
    /// <summary>The field is left out.</summary>
    Hidden = 0,

    /// <summary>The field is shown masked (for example <c>a•••@example.com</c>).</summary>
    Masked = 1,

    /// <summary>The value is shown.</summary>
    Read = 2,

    /// <summary>The value is shown and may be changed.</summary>
    Update = 3,
}

/// <summary>What a field security profile grants on one secured field. Each level includes the ones below it.</summary>
public enum FieldGrant : byte
{
    /// <summary>Nothing: the field is hidden.</summary>
    None = 0,

    /// <summary>Read, masked.</summary>
    Read = 1,

    /// <summary>Read the value unmasked.</summary>
    ReadUnmasked = 2,

    /// <summary>Read unmasked and change.</summary>
    Update = 3,
}

/// <summary>How sensitive a field is. Sensitive and secret fields are secured: only field security profiles grant them.</summary>
public enum Sensitivity : byte
{
    /// <summary>Anyone who can read the record.</summary>
    Public = 0,

    /// <summary>Anyone in the organisation who can read the record.</summary>
    Internal = 1,

    /// <summary>Secured: personal data (email, phone).</summary>
    Sensitive = 2,

    /// <summary>Secured: national ids, bank details, health data.</summary>
    Secret = 3,
}

/// <summary>Who a share or an owner is: a user or a team.</summary>
public enum PrincipalKind : byte
{
    /// <summary>A user (id = the user's <c>sub</c>).</summary>
    User = 0,

    /// <summary>A team (id = the team id).</summary>
    Team = 1,
}

/// <summary>The names used on the wire, in policy files and in the admin API, and their parsing.</summary>
public static class CrmNames
{
    /// <summary>Number of actions: privilege tables are indexed entity * ActionCount + action.</summary>
    public const int ActionCount = 7;

    private static readonly string[] ActionNames = ["create", "read", "update", "delete", "assign", "share", "export"];
    private static readonly string[] DepthNames = ["none", "own", "business_unit", "business_unit_and_children", "organization"];
    private static readonly string[] DepthLabels = ["None", "User (own records)", "Business unit", "Business unit and child units", "Organization"];
    private static readonly string[] FieldAccessNames = ["hidden", "masked", "read", "update"];
    private static readonly string[] FieldGrantNames = ["none", "read", "read_unmasked", "update"];
    private static readonly string[] SensitivityNames = ["public", "internal", "sensitive", "secret"];
    private static readonly string[] PrincipalNames = ["user", "team"];

    /// <summary>Every action, in order.</summary>
    public static IReadOnlyList<CrmAction> Actions { get; } = [.. Enum.GetValues<CrmAction>()];

    /// <summary>Every depth, in order.</summary>
    public static IReadOnlyList<Depth> Depths { get; } = [.. Enum.GetValues<Depth>()];

    /// <summary>Wire name of an action (<c>read</c>).</summary>
    public static string Name(this CrmAction action) => ActionNames[(int)action];

    /// <summary>Wire name of a depth (<c>business_unit_and_children</c>).</summary>
    public static string Name(this Depth depth) => DepthNames[(int)depth];

    /// <summary>The label a Dynamics 365 admin knows (<c>Business unit and child units</c>).</summary>
    public static string Label(this Depth depth) => DepthLabels[(int)depth];

    /// <summary>Wire name of a field access (<c>masked</c>).</summary>
    public static string Name(this FieldAccess access) => FieldAccessNames[(int)access];

    /// <summary>Wire name of a field grant (<c>read_unmasked</c>).</summary>
    public static string Name(this FieldGrant grant) => FieldGrantNames[(int)grant];

    /// <summary>Wire name of a sensitivity (<c>secret</c>).</summary>
    public static string Name(this Sensitivity sensitivity) => SensitivityNames[(int)sensitivity];

    /// <summary>Wire name of a principal kind (<c>team</c>).</summary>
    public static string Name(this PrincipalKind kind) => PrincipalNames[(int)kind];

    /// <summary>Parses an action name (case-sensitive, as written above).</summary>
    public static bool TryParseAction(string? text, out CrmAction action) => TryParse(text, ActionNames, out action);

    /// <summary>Parses a depth name.</summary>
    public static bool TryParseDepth(string? text, out Depth depth) => TryParse(text, DepthNames, out depth);

    /// <summary>Parses a field access name.</summary>
    public static bool TryParseFieldAccess(string? text, out FieldAccess access) => TryParse(text, FieldAccessNames, out access);

    /// <summary>Parses a field grant name.</summary>
    public static bool TryParseFieldGrant(string? text, out FieldGrant grant) => TryParse(text, FieldGrantNames, out grant);

    /// <summary>Parses a sensitivity name.</summary>
    public static bool TryParseSensitivity(string? text, out Sensitivity sensitivity) => TryParse(text, SensitivityNames, out sensitivity);

    /// <summary>Parses a principal kind.</summary>
    public static bool TryParsePrincipal(string? text, out PrincipalKind kind) => TryParse(text, PrincipalNames, out kind);

    /// <summary>The accepted action names, for error messages.</summary>
    public static string ActionList => string.Join(", ", ActionNames);

    /// <summary>The accepted depth names, for error messages.</summary>
    public static string DepthList => string.Join(", ", DepthNames);

    /// <summary>The accepted field grant names, for error messages.</summary>
    public static string FieldGrantList => string.Join(", ", FieldGrantNames);

    /// <summary>The accepted sensitivity names, for error messages.</summary>
    public static string SensitivityList => string.Join(", ", SensitivityNames);

    private static bool TryParse<T>(string? text, string[] names, [NotNullWhen(true)] out T value)
        where T : struct, Enum
    {
        var index = text is null ? -1 : Array.IndexOf(names, text);
        value = index >= 0 ? (T)(object)(byte)index : default;
        return index >= 0;
    }
}
