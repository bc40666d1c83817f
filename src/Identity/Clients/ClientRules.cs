using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Clients;

/// <summary>
/// What a client made at run time may be: the grants and scopes this server actually serves, redirect URIs it may send a
/// code to, which clients configuration owns, and the overlap of a rotated secret. The admin API, the admin pages and the
/// <c>clients</c> verbs all check through here (via <see cref="Admin.AdminOperations"/>).
/// </summary>
internal sealed class ClientRules(IOptions<IdentitySettings> settings, IOptions<OpenIddictServerOptions> server, TimeProvider time)
{
    /// <summary>
    /// The application property with the hash of the secret a rotation replaced and until when it still works:
    /// <c>{"hash": "...", "until": "2026-12-08T10:00:00+00:00"}</c>. Only the hash OpenIddict stored is kept, never a secret.
    /// </summary>
    public const string PreviousSecretProperty = "crm_security_previous_secret";

    /// <summary>The longest overlap a rotation may give the old secret: a rotation is meant to end the old secret soon.</summary>
    public static readonly TimeSpan MaxOverlap = TimeSpan.FromDays(30);

    /// <summary>Overlap when none is given: a day for every instance of the client to pick up the new secret.</summary>
    public static readonly TimeSpan DefaultOverlap = TimeSpan.FromDays(1);

    public const int MaxRedirectUris = 20;

    public const int MaxUriLength = 2000;

    /// <summary>
    /// Grants a client may be given at run time (implicit and password are never offered: RFC 9700 §2.1.2, §2.4). Token
    /// exchange (RFC 8693) is offered too, so a client that has it (demo-crm) can be edited without losing it.
    /// </summary>
    public static readonly ImmutableArray<string> OfferedGrants =
        [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken, GrantTypes.ClientCredentials, GrantTypes.DeviceCode, GrantTypes.TokenExchange];

    /// <summary>Short names accepted for the URN grants (the CLI and forms use them).</summary>
    private static readonly Dictionary<string, string> GrantAliases = new(StringComparer.Ordinal)
    {
        ["device_code"] = GrantTypes.DeviceCode,
        ["token_exchange"] = GrantTypes.TokenExchange,
    };

    public TimeProvider Time => time;

    /// <summary>The offered grants this server has switched on.</summary>
    public IReadOnlyList<string> SupportedGrants => [.. OfferedGrants.Where(server.Value.GrantTypes.Contains)];

    /// <summary>Every scope the server knows (OpenID Connect's and the configured API scopes), sorted.</summary>
    public IReadOnlyList<string> KnownScopes => [.. server.Value.Scopes.Order(StringComparer.Ordinal)];

    /// <summary>The grant's stored name, or null when it is not one a client may be given here.</summary>
    public string? Grant(string name)
    {
        var grant = GrantAliases.GetValueOrDefault(name, name);
        return SupportedGrants.Contains(grant) ? grant : null;
    }

    /// <summary>A short, readable grant name for forms and CLI output.</summary>
    public static string ShortGrant(string grant) => GrantAliases.FirstOrDefault(a => a.Value == grant).Key ?? grant;

    /// <summary><c>Identity:Clients:N</c> for a client that configuration owns, null for one made at run time.</summary>
    public string? ConfigurationSetting(string clientId)
    {
        var index = settings.Value.Clients.FindIndex(c => string.Equals(c.ClientId, clientId, StringComparison.Ordinal));
        return index < 0 ? null : string.Create(CultureInfo.InvariantCulture, $"Identity:Clients:{index}");
    }

    /// <summary>
    /// Why a redirect URI (or post-logout redirect URI) is refused, or null when it may be registered. The authorization
    /// server sends codes only to URIs compared exactly (RFC 9700 §4.1.3), so each must be absolute without a fragment
    /// (RFC 6749 §3.1.2), and https (RFC 6749 §3.1.2.1, RFC 9700 §2.6), except a native app's loopback redirect on an IP
    /// literal (RFC 8252 §7.3; §8.3 advises against the name "localhost", which may resolve elsewhere).
    /// </summary>
    public static string? RedirectUriProblem(string uri, bool publicClient)
    {
        // On Unix a path such as "/cb" parses as an absolute file: URI; a redirect URI must name its scheme itself.
        if (string.IsNullOrWhiteSpace(uri) || uri.Length > MaxUriLength || !Uri.TryCreate(uri, UriKind.Absolute, out var parsed)
            || !uri.StartsWith(parsed.Scheme + ":", StringComparison.OrdinalIgnoreCase))
        {
            return $"'{uri}' is not an absolute URI of at most {MaxUriLength} characters.";
        }

        if (uri.Contains('#', StringComparison.Ordinal))
        {
            return $"'{uri}' has a fragment; a redirect URI must not (RFC 6749 §3.1.2).";
        }

        if (parsed.Scheme == Uri.UriSchemeHttps)
        {
            return null;
        }

        if (parsed.Scheme == Uri.UriSchemeHttp && publicClient && IPAddress.TryParse(parsed.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address))
        {
            return null;
        }

        return parsed.Scheme == Uri.UriSchemeHttp && publicClient && parsed.IsLoopback
            ? $"'{uri}' names localhost; a native app's loopback redirect uses the IP literal 127.0.0.1 or [::1] (RFC 8252 §8.3)."
            : $"'{uri}' must use https; plain http is allowed only for a public (native) client's loopback redirect on 127.0.0.1 or [::1] (RFC 8252 §7.3).";
    }

    /// <summary>Parses an overlap: <c>0</c>, a number with <c>s</c>, <c>m</c>, <c>h</c> or <c>d</c>, or a .NET time span (<c>1.00:00:00</c>).</summary>
    public static TimeSpan? ParseOverlap(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return DefaultOverlap;
        }

        text = text.Trim();
        TimeSpan? value = null;
        if (text.Length > 1 && int.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            value = text[^1] switch
            {
                's' => TimeSpan.FromSeconds(number),
                'm' => TimeSpan.FromMinutes(number),
                'h' => TimeSpan.FromHours(number),
                'd' => TimeSpan.FromDays(number),
                _ => null,
            };
        }

        if (value is null && text == "0")
        {
            value = TimeSpan.Zero;
        }

        if (value is null && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span))
        {
            value = span;
        }

        return value is { } v && v >= TimeSpan.Zero && v <= MaxOverlap ? v : null;
    }

    /// <summary>A new client secret: 256 random bits, base64url (RFC 6749 §2.3.1 leaves the format to the server).</summary>
    public static string NewSecret() => Base64Url(RandomNumberGenerator.GetBytes(32));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The replaced secret's hash and its end, when the application has one.</summary>
    public static (string Hash, DateTimeOffset Until)? PreviousSecret(ImmutableDictionary<string, JsonElement> properties)
    {
        ArgumentNullException.ThrowIfNull(properties);
        if (!properties.TryGetValue(PreviousSecretProperty, out var value) || value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("hash", out var hash) || hash.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("until", out var until) || !until.TryGetDateTimeOffset(out var end))
        {
            return null;
        }

        return (hash.GetString()!, end);
    }

    public static JsonElement PreviousSecretValue(string hash, DateTimeOffset until) =>
        JsonSerializer.SerializeToElement(new Dictionary<string, object> { ["hash"] = hash, ["until"] = until });
}
