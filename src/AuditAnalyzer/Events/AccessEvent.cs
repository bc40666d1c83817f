using System.Diagnostics.CodeAnalysis;

namespace CrmSecurity.AuditAnalyzer.Events;

/// <summary>What a user did, as the access-event contract of design.md names it.</summary>
internal enum AccessAction : byte
{
    Unknown = 0,
    Login,
    LoginFailed,
    Logout,
    Read,
    List,
    Search,
    ReportRun,
    Export,
    ApiQuery,
    Create,
    Update,
    Delete,
    Decrypt,
    Share,
    Assign,
    AdminChange,
    Impersonate,
}

internal enum EventOutcome : byte
{
    Success = 0,
    Denied,
    Error,
}

/// <summary>
/// One access event after parsing. Strings that repeat (user ids, entities, countries) are interned by the
/// parsers, so a long run holds one copy of each, not one per event.
/// <para>
/// Fields nearly every event leaves empty (tenant, user name, target user, privilege, details, bytes) live in a side
/// object made only when one of them is set: an event is then 40 bytes smaller, and events are what a scoring pass
/// holds longest (the lateness window and the batches in flight), see docs/benchmarks.md. The record's owner and
/// unit stay on the event: the sample CRM sends them with every record read.
/// </para>
/// </summary>
internal sealed record AccessEvent
{
    private Rare? _rare;

    public AccessEvent()
    {
    }

    // `with` copies: the side object is copied too, so setting a rare field on the copy never changes the original.
    [SetsRequiredMembers]
    private AccessEvent(AccessEvent original)
    {
        Timestamp = original.Timestamp;
        UserId = original.UserId;
        Action = original.Action;
        EventId = original.EventId;
        HasSourceId = original.HasSourceId;
        SourceFile = original.SourceFile;
        SourceLine = original.SourceLine;
        SessionId = original.SessionId;
        SourceIp = original.SourceIp;
        Country = original.Country;
        ClientId = original.ClientId;
        Entity = original.Entity;
        RecordId = original.RecordId;
        RecordOwner = original.RecordOwner;
        RecordBusinessUnit = original.RecordBusinessUnit;
        RecordCount = original.RecordCount;
        FieldCount = original.FieldCount;
        Outcome = original.Outcome;
        _rare = original._rare is { } rare ? rare with { } : null;
    }

    public required DateTimeOffset Timestamp { get; init; }

    public required string UserId { get; init; }

    public required AccessAction Action { get; init; }

    /// <summary>The event's own id (dedupe key), or <c>file:line</c> when the source gave none.</summary>
    public required string EventId { get; init; }

    /// <summary>True when <see cref="EventId"/> came from the source and may be used to drop duplicates.</summary>
    public bool HasSourceId { get; init; }

    /// <summary>File the event was read from (shared string) and its line, for reports on late or repeated events.</summary>
    public string? SourceFile { get; init; }

    public long SourceLine { get; init; }

    public string? Tenant { get => _rare?.Tenant; init => Set(value, static (r, v) => r.Tenant = v); }

    public string? UserName { get => _rare?.UserName; init => Set(value, static (r, v) => r.UserName = v); }

    public string? SessionId { get; init; }

    public string? SourceIp { get; init; }

    public string? Country { get; init; }

    public string? ClientId { get; init; }

    public string? Entity { get; init; }

    public string? RecordId { get; init; }

    /// <summary>The record's owner (a user id) when the source says: optional contract field <c>record_owner</c>.</summary>
    public string? RecordOwner { get; init; }

    /// <summary>The record's business unit when the source says: optional contract field <c>record_business_unit</c>.</summary>
    public string? RecordBusinessUnit { get; init; }

    /// <summary>Rows returned or touched; 1 when the source does not say.</summary>
    public long RecordCount { get; init; } = 1;

    public long Bytes
    {
        get => _rare?.Bytes ?? 0;
        init
        {
            if (value != 0 || _rare is not null)
            {
                (_rare ??= new Rare()).Bytes = value;
            }
        }
    }

    /// <summary>How many field names the event listed (decrypts: values revealed per record).</summary>
    public int FieldCount { get; init; }

    public EventOutcome Outcome { get; init; }

    public string? TargetUser { get => _rare?.TargetUser; init => Set(value, static (r, v) => r.TargetUser = v); }

    public string? Privilege { get => _rare?.Privilege; init => Set(value, static (r, v) => r.Privilege = v); }

    public string? Details { get => _rare?.Details; init => Set(value, static (r, v) => r.Details = v); }

    public long UtcTicks => Timestamp.UtcTicks;

    public bool Succeeded => Outcome == EventOutcome.Success;

    private void Set(string? value, Action<Rare, string?> set)
    {
        // A null leaves an event without the side object: two events that differ only in that stay equal.
        if (value is not null || _rare is not null)
        {
            set(_rare ??= new Rare(), value);
        }
    }

    /// <summary>The rarely set fields; a record, so events compare by value as before.</summary>
    private sealed record Rare
    {
        public string? Tenant { get; set; }

        public string? UserName { get; set; }

        public string? TargetUser { get; set; }

        public string? Privilege { get; set; }

        public string? Details { get; set; }

        public long Bytes { get; set; }
    }
}

internal static class AccessActions
{
    private static readonly Dictionary<string, AccessAction> ByName = new(StringComparer.Ordinal)
    {
        ["login"] = AccessAction.Login,
        ["login_failed"] = AccessAction.LoginFailed,
        ["logout"] = AccessAction.Logout,
        ["read"] = AccessAction.Read,
        ["list"] = AccessAction.List,
        ["search"] = AccessAction.Search,
        ["report_run"] = AccessAction.ReportRun,
        ["export"] = AccessAction.Export,
        ["api_query"] = AccessAction.ApiQuery,
        ["create"] = AccessAction.Create,
        ["update"] = AccessAction.Update,
        ["delete"] = AccessAction.Delete,
        ["decrypt"] = AccessAction.Decrypt,
        ["share"] = AccessAction.Share,
        ["assign"] = AccessAction.Assign,
        ["admin_change"] = AccessAction.AdminChange,
        ["impersonate"] = AccessAction.Impersonate,
    };

    private static readonly Dictionary<string, AccessAction>.AlternateLookup<ReadOnlySpan<char>> Lookup = ByName.GetAlternateLookup<ReadOnlySpan<char>>();

    private static readonly string[] Names = BuildNames();

    public static bool TryParse(ReadOnlySpan<char> name, out AccessAction action) => Lookup.TryGetValue(name, out action);

    public static string Name(AccessAction action) => Names[(int)action];

    /// <summary>Reading business data: the volume that bulk-access and admin checks count.</summary>
    public static bool ReadsData(AccessAction action) =>
        action is AccessAction.Read or AccessAction.List or AccessAction.Search or AccessAction.ReportRun or AccessAction.ApiQuery or AccessAction.Export;

    /// <summary>Touches business records at all (reads, writes, decrypts), as opposed to sign-in and admin events.</summary>
    public static bool TouchesData(AccessAction action) =>
        ReadsData(action) || action is AccessAction.Create or AccessAction.Update or AccessAction.Delete or AccessAction.Decrypt or AccessAction.Share or AccessAction.Assign;

    private static string[] BuildNames()
    {
        var names = new string[Enum.GetValues<AccessAction>().Length];
        names[0] = "unknown";
        foreach (var (name, action) in ByName)
        {
            names[(int)action] = name;
        }

        return names;
    }
}
