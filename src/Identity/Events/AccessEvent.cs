using System.Text.Json.Serialization;
using CrmSecurity.Identity.Data;

namespace CrmSecurity.Identity.Events;

/// <summary>
/// One access event in the shared access-event schema (design.md): the JSON names are the contract the
/// AuditAnalyzer reads. Never carries a secret, a password or a token; only identifiers. Part of Identity's public
/// contract: another module receives these through an <see cref="IAccessEventSink"/> or writes its own through
/// <see cref="IAccessEventLog"/>.
/// </summary>
public sealed record AccessEvent
{
    [JsonPropertyName("event_id")]
    public string EventId { get; init; } = Guid.NewGuid().ToString("N");

    [JsonPropertyName("timestamp")]
    public required DateTimeOffset Timestamp { get; init; }

    /// <summary>The user's id, or the client id for a client acting for itself (client credentials).</summary>
    [JsonPropertyName("user_id")]
    public required string UserId { get; init; }

    [JsonPropertyName("action")]
    public required string Action { get; init; }

    [JsonPropertyName("tenant")]
    public string? Tenant { get; init; }

    [JsonPropertyName("user_name")]
    public string? UserName { get; init; }

    [JsonPropertyName("session_id")]
    public string? SessionId { get; init; }

    [JsonPropertyName("source_ip")]
    public string? SourceIp { get; init; }

    [JsonPropertyName("user_agent")]
    public string? UserAgent { get; init; }

    [JsonPropertyName("client_id")]
    public string? ClientId { get; init; }

    /// <summary>The entity acted on, when the event is about one (e.g. <c>user</c> for a password change).</summary>
    [JsonPropertyName("entity")]
    public string? Entity { get; init; }

    [JsonPropertyName("record_id")]
    public string? RecordId { get; init; }

    [JsonPropertyName("outcome")]
    public string Outcome { get; init; } = Outcomes.Success;

    [JsonPropertyName("target_user")]
    public string? TargetUser { get; init; }

    [JsonPropertyName("privilege")]
    public string? Privilege { get; init; }

    [JsonPropertyName("details")]
    public string? Details { get; init; }
}

/// <summary>The actions Identity writes. The first three are in design.md's list; the others are Identity's own.</summary>
public static class AccessActions
{
    public const string Login = "login";
    public const string LoginFailed = "login_failed";
    public const string Logout = "logout";
    public const string AdminChange = "admin_change";
    public const string Lockout = "lockout";
    public const string MfaChange = "mfa_change";
    public const string PasswordChange = "password_change";
    public const string TokenIssue = "token_issue";
    public const string TokenRefresh = "token_refresh";
    public const string TokenExchange = "token_exchange";
    public const string TokenRevoke = "token_revoke";
    public const string TokenRejected = "token_rejected";
}

/// <summary>The outcomes of an access event.</summary>
public static class Outcomes
{
    public const string Success = "success";
    public const string Denied = "denied";
    public const string Error = "error";
}

/// <summary>
/// Where access events go. Identity registers a database-and-log sink; another module (the AuditAnalyzer)
/// adds its own with <c>services.AddSingleton&lt;IAccessEventSink, ...&gt;()</c> and receives every event in-process.
/// </summary>
public interface IAccessEventSink
{
    /// <summary>Accepts an event; must not block the request on I/O.</summary>
    ValueTask WriteAsync(AccessEvent accessEvent, CancellationToken cancellationToken);
}

/// <summary>
/// Identity's access-event log, for another module to write its own events where Identity's go (the
/// <c>identity_access_events</c> table, the log and every registered <see cref="IAccessEventSink"/>).
/// </summary>
public interface IAccessEventLog
{
    /// <summary>Writes the event to every sink; does not wait on I/O.</summary>
    ValueTask WriteAsync(AccessEvent accessEvent, CancellationToken cancellationToken = default);
}

/// <summary>Fans one event out to every registered sink.</summary>
internal sealed class AccessEvents(IEnumerable<IAccessEventSink> sinks, TimeProvider time) : IAccessEventLog
{
    private readonly IAccessEventSink[] _sinks = [.. sinks];

    public TimeProvider Time => time;

    public async ValueTask WriteAsync(AccessEvent accessEvent, CancellationToken cancellationToken = default)
    {
        foreach (var sink in _sinks)
        {
            await sink.WriteAsync(accessEvent, cancellationToken);
        }
    }

    /// <summary>
    /// A sign-in step (password, passkey, upstream provider) from this request's address and browser: <paramref name="userId"/>
    /// is "unknown" when no account was identified.
    /// </summary>
    public ValueTask WriteSignInAsync(HttpContext http, string userId, string? userName, string? tenant, string action, string details, string outcome) =>
        WriteAsync(new AccessEvent
        {
            Timestamp = time.GetUtcNow(),
            UserId = userId,
            Action = action,
            UserName = userName,
            Tenant = tenant,
            SourceIp = http.Connection.RemoteIpAddress?.ToString(),
            UserAgent = http.Request.Headers.UserAgent.ToString(),
            Outcome = outcome,
            Details = details,
        }, http.RequestAborted);

    /// <summary>What a signed-in person did to their own account (password, two-step, sessions), from this request's address.</summary>
    public ValueTask WriteAccountChangeAsync(CrmUser user, string action, string? details, HttpContext http) => WriteAsync(new AccessEvent
    {
        Timestamp = time.GetUtcNow(),
        UserId = user.Id,
        UserName = user.UserName,
        Tenant = user.Tenant,
        Action = action,
        SourceIp = http.Connection.RemoteIpAddress?.ToString(),
        Details = details,
    }, http.RequestAborted);
}
