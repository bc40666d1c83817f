using System.Security.Claims;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Organisation;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>
/// What one authenticated sending client may report on: the tenants its own token names (<c>tenant</c> claims, set by
/// the identity provider from the client's registration) and, where <c>AuditAnalyzer:Live:Senders:&lt;client&gt;</c> says
/// so, the users. Nothing a line declares is trusted beyond that (design.md, trust boundaries): a CRM app can frame
/// nobody outside its binding, and an end user can frame nobody at all, because only a client's own token is accepted.
/// </summary>
internal sealed class SenderBinding
{
    /// <summary>Senders the host itself uses in-process; an OAuth client of the same name could pass for them.</summary>
    public static readonly IReadOnlySet<string> ReservedClientIds = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "identity", "demo-history" };

    private readonly HashSet<string> _tenants;
    private readonly HashSet<string>? _users;
    private readonly HashSet<string>? _units;
    private readonly UserDirectory _directory;

    private SenderBinding(string clientId, HashSet<string> tenants, SenderOptions? sender, UserDirectory directory)
    {
        ClientId = clientId;
        _tenants = tenants;
        _users = sender is null ? null : new HashSet<string>(sender.Users ?? [], StringComparer.Ordinal);
        _units = sender is null ? null : new HashSet<string>(sender.BusinessUnits ?? [], StringComparer.Ordinal);
        _directory = directory;
    }

    public string ClientId { get; }

    public IReadOnlyCollection<string> Tenants => _tenants;

    /// <summary>
    /// The binding of the caller, or why it may not send at all: only a client's own token (client credentials,
    /// RFC 6749 §4.4: <c>sub</c> equals <c>client_id</c> and no <c>act</c>, RFC 9068 §2.2, RFC 8693 §4.1) names a sender.
    /// </summary>
    public static SenderBinding? For(ClaimsPrincipal user, LiveOptions options, UserDirectory directory, out string? refusal)
    {
        var client = user.FindFirst("client_id")?.Value;
        var subject = user.FindFirst("sub")?.Value;
        if (string.IsNullOrEmpty(client) || !string.Equals(subject, client, StringComparison.Ordinal) || user.FindFirst("act") is not null)
        {
            refusal = "Access events are accepted only with the sending client's own token (client credentials grant, RFC 6749 §4.4); a token issued to or for a user cannot send them.";
            return null;
        }

        if (ReservedClientIds.Contains(client))
        {
            refusal = $"The client id '{client}' is reserved for events the host records itself; register the sending application under another client id.";
            return null;
        }

        var tenants = user.FindAll("tenant").Select(c => c.Value).Where(t => t.Length > 0).ToHashSet(StringComparer.Ordinal);
        if (tenants.Count == 0)
        {
            // Deny by default: a client bound to no tenant reports on no tenant (Identity:Clients:N:Tenants).
            refusal = $"The client '{client}' is bound to no tenant, so it may report on none. Give it tenants in its registration (Identity:Clients:N:Tenants).";
            return null;
        }

        refusal = null;
        return new SenderBinding(client, tenants, options.Senders.GetValueOrDefault(client), directory);
    }

    /// <summary>Null when the client may report this event; otherwise the reason and a message for the line's error.</summary>
    public (RejectReason Reason, string Message)? Check(AccessEvent e)
    {
        if (e.Tenant is null)
        {
            if (_tenants.Count != 1)
            {
                return (RejectReason.TenantNotAllowed, $"the line names no tenant and client '{ClientId}' reports on several; name one of them in 'tenant'");
            }
        }
        else if (!_tenants.Contains(e.Tenant))
        {
            return (RejectReason.TenantNotAllowed, $"client '{ClientId}' may not report on tenant '{e.Tenant}'");
        }

        if (_users is null)
        {
            return null;
        }

        if (_users.Contains(e.UserId)
            || (_units!.Count > 0 && _directory.Find(e.UserId)?.BusinessUnit is { } unit && _units.Contains(unit)))
        {
            return null;
        }

        return (RejectReason.UserNotAllowed, $"client '{ClientId}' may not report on this user_id (AuditAnalyzer:Live:Senders:{ClientId})");
    }
}
