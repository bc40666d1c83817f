namespace CrmSecurity.Crypto.Events;

/// <summary>
/// An access event in the shape of the project's access-event contract (JSON Lines field names in brackets),
/// raised for every crypto-shred and every decrypt done on behalf of a user. It never carries key material or
/// plaintext, only what was touched.
/// </summary>
/// <param name="Timestamp">When it happened [timestamp].</param>
/// <param name="UserId">Who did it: a user id, or the operator account for CLI verbs [user_id].</param>
/// <param name="Action">The contract's action: <c>decrypt</c>, or <c>admin_change</c> for a shred [action].</param>
/// <param name="Outcome"><c>success</c>, <c>denied</c> or <c>error</c> [outcome].</param>
public sealed record CryptoAccessEvent(DateTimeOffset Timestamp, string UserId, string Action, string Outcome)
{
    /// <summary>Dedupe key [event_id].</summary>
    public string EventId { get; init; } = Guid.NewGuid().ToString("N");

    /// <summary>Tenant [tenant].</summary>
    public string? Tenant { get; init; }

    /// <summary>Table or entity [entity].</summary>
    public string? Entity { get; init; }

    /// <summary>Row or data-subject id [record_id].</summary>
    public string? RecordId { get; init; }

    /// <summary>Rows touched [record_count].</summary>
    public long RecordCount { get; init; } = 1;

    /// <summary>Field names touched [fields].</summary>
    public IReadOnlyList<string>? Fields { get; init; }

    /// <summary>Privilege used, for admin changes [privilege].</summary>
    public string? Privilege { get; init; }

    /// <summary>The OAuth client that asked, for decrypts through the encryption service [client_id].</summary>
    public string? ClientId { get; init; }

    /// <summary>The caller's address, for decrypts through the encryption service [source_ip].</summary>
    public string? SourceIp { get; init; }

    /// <summary>Free text [details], e.g. <c>crypto_shred</c>; never secrets.</summary>
    public string? Details { get; init; }
}

/// <summary>
/// Where crypto access events go. The one boundary between this library and the audit trail: the host connects
/// it to the access-event pipeline (the analyzer); the library only raises events.
/// </summary>
public interface ICryptoEventSink
{
    /// <summary>Records one event. Implementations must be thread-safe; a failure must surface, not vanish.</summary>
    /// <param name="accessEvent">The event.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    ValueTask WriteAsync(CryptoAccessEvent accessEvent, CancellationToken cancellationToken);
}
