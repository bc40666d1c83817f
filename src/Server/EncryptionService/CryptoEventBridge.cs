using System.Globalization;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Identity.Events;

namespace CrmSecurity.Server.EncryptionService;

/// <summary>
/// Sends the Crypto module's access events (decrypts, shreds) where Identity's go: its access-event writer (the
/// <c>identity_access_events</c> table and the log, and every other sink registered in-process), and also to the
/// module's JSON Lines file, which keeps the schema's <c>entity</c>, <c>record_id</c> and <c>fields</c> columns that
/// Identity's table does not have yet. Events carry identifiers only, never a value.
/// </summary>
internal sealed class CryptoEventBridge(JsonLinesEventSink file, IServiceProvider services) : ICryptoEventSink
{
    public async ValueTask WriteAsync(CryptoAccessEvent accessEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(accessEvent);
        await file.WriteAsync(accessEvent, cancellationToken);

        // Absent when the Identity module is switched off (a crypto-only deployment): the file is then the record.
        if (services.GetService<IAccessEventLog>() is { } identity)
        {
            await identity.WriteAsync(ToIdentityEvent(accessEvent), cancellationToken);
        }
    }

    internal static AccessEvent ToIdentityEvent(CryptoAccessEvent e) => new()
    {
        EventId = e.EventId,
        Timestamp = e.Timestamp,
        UserId = e.UserId,
        Action = e.Action,
        Outcome = e.Outcome,
        Tenant = e.Tenant,
        ClientId = e.ClientId,
        SourceIp = e.SourceIp,
        Privilege = e.Privilege,
        Details = Describe(e),
    };

    /// <summary>"entity contact, record 42, fields email: reason", since Identity's table has no columns for them.</summary>
    private static string Describe(CryptoAccessEvent e)
    {
        var parts = new List<string>();
        if (e.Entity is not null)
        {
            parts.Add($"entity {e.Entity}");
        }

        if (e.RecordId is not null)
        {
            parts.Add($"record {e.RecordId}");
        }

        if (e.Fields is { Count: > 0 } fields)
        {
            parts.Add($"fields {string.Join(' ', fields)}");
        }

        if (e.RecordCount != 1)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"records {e.RecordCount}"));
        }

        var where = string.Join(", ", parts);
        return e.Details is null ? where : where.Length == 0 ? e.Details : $"{where}: {e.Details}";
    }
}
