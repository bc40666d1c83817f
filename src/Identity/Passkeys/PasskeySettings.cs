using System.Net;

namespace CrmSecurity.Identity.Passkeys;

/// <summary>
/// <c>Identity:Passkeys</c>: who this relying party is to an authenticator. Both values come from configuration (or from
/// <c>Identity:Issuer</c>, the fixed public origin), never from a request's Host or Origin header: a relying party id taken
/// from the request would let whoever chooses the Host header choose which site's credentials are asked for.
/// </summary>
internal sealed class PasskeySettings
{
    /// <summary>
    /// The WebAuthn relying party id (WebAuthn Level 3 §5.1.3 <c>rp.id</c>): a host name, without scheme or port, equal to
    /// or a registrable suffix of every origin's host. Empty: the host of the public origin (<c>Identity:Issuer</c>).
    /// A passkey works only for the id it was registered for, so changing it orphans every registered passkey.
    /// </summary>
    public string? RelyingPartyId { get; set; }

    /// <summary>
    /// The origins a ceremony may come from (WebAuthn Level 3 §7.1 step 9 / §7.2 step 13, <c>clientDataJSON.origin</c>),
    /// e.g. <c>https://login.example.com</c>. Empty: the public origin alone.
    /// </summary>
    public List<string> Origins { get; set; } = [];

    /// <summary>How long a challenge stays valid (WebAuthn Level 3 §13.4.3: short-lived, used once). Default 5 minutes.</summary>
    public TimeSpan CeremonyLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Checks <c>Identity:Passkeys</c>; each message names the setting and the fix.</summary>
    public static void Validate(PasskeySettings settings, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(errors);
        var rpId = settings.RelyingPartyId?.Trim();
        if (!string.IsNullOrEmpty(rpId)
            && (Uri.CheckHostName(rpId) != UriHostNameType.Dns || IPAddress.TryParse(rpId, out _) || rpId.Contains(':', StringComparison.Ordinal)))
        {
            // WebAuthn Level 3 §5.1.3 / HTML "valid domain": an RP ID is a domain, never an IP address, URL or host:port.
            errors.Add($"Identity:Passkeys:RelyingPartyId '{settings.RelyingPartyId}' is not a host name. Set the domain users sign in on, e.g. login.example.com (no scheme, no port, not an IP address).");
            rpId = null;
        }

        foreach (var (origin, index) in settings.Origins.Select((o, i) => (o, i)))
        {
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http")
                || uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0 || origin.TrimEnd('/').Length != uri.GetLeftPart(UriPartial.Authority).Length)
            {
                errors.Add($"Identity:Passkeys:Origins:{index} '{origin}' is not an origin. Give scheme, host and port only, e.g. https://login.example.com.");
            }
            else if (!string.IsNullOrEmpty(rpId) && !IsWithin(uri.Host, rpId))
            {
                // WebAuthn Level 3 §5.1.3: the RP ID must equal the origin's effective domain or be a registrable suffix of it.
                errors.Add($"Identity:Passkeys:Origins:{index} '{origin}' is not on the relying party id '{rpId}'. Use an origin whose host is {rpId} or ends with .{rpId}.");
            }
        }

        if (settings.CeremonyLifetime <= TimeSpan.Zero || settings.CeremonyLifetime > TimeSpan.FromMinutes(30))
        {
            errors.Add($"Identity:Passkeys:CeremonyLifetime '{settings.CeremonyLifetime}' must be positive and at most 30 minutes, e.g. 00:05:00.");
        }
    }

    /// <summary>True when <paramref name="host"/> is <paramref name="rpId"/> or a subdomain of it (WebAuthn Level 3 §5.1.3).</summary>
    internal static bool IsWithin(string host, string rpId) =>
        string.Equals(host, rpId, StringComparison.OrdinalIgnoreCase) || host.EndsWith("." + rpId, StringComparison.OrdinalIgnoreCase);
}
