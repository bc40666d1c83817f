using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Crypto.Service;

/// <summary>How the bearer of a token stands to the data it asks about.</summary>
internal enum CallerKind
{
    /// <summary>A client acting for itself (client credentials: <c>sub</c> = <c>client_id</c>, RFC 9068 §2.2).</summary>
    Client,

    /// <summary>
    /// A client acting for a user: a token made by token exchange (RFC 8693 §4.1), whose <c>act</c> names the client
    /// that exchanged the user's token and presents this one.
    /// </summary>
    Delegated,

    /// <summary>A user's own token (authorization code or refresh): whoever holds it may be the user's browser.</summary>
    User,
}

/// <summary>Who is calling the encryption service, read from the validated access token.</summary>
/// <param name="Subject">The token's <c>sub</c>.</param>
/// <param name="ClientId">The token's <c>client_id</c>: the client the token was issued to.</param>
/// <param name="Kind">Client, delegated or user.</param>
/// <param name="Tenants">The token's <c>tenant</c> claims.</param>
internal sealed record CryptoCaller(string? Subject, string? ClientId, CallerKind Kind, IReadOnlyList<string> Tenants)
{
    // The one place the service names token claims. JWT claim names: RFC 7519 §4.1.2 (sub), RFC 9068 §2.2
    // (client_id), RFC 8693 §4.1 (act); tenant is this service's (docs/identity.md, "Claims contract").

    /// <summary>The subject claim, <c>sub</c> (RFC 7519 §4.1.2).</summary>
    public const string SubjectClaim = "sub";

    /// <summary>The client the token was issued to, <c>client_id</c> (RFC 9068 §2.2).</summary>
    public const string ClientIdClaim = "client_id";

    /// <summary>The acting party of an exchanged token, <c>act</c> (RFC 8693 §4.1).</summary>
    public const string ActorClaim = "act";

    /// <summary>The tenants a token is bound to, <c>tenant</c> (this service's claim).</summary>
    public const string TenantClaim = "tenant";

    /// <summary>Who the access events name: the token's subject (a user id, or the client id for a client acting for itself).</summary>
    public string Name => Subject ?? ClientId ?? "unknown";

    public static CryptoCaller Of(ClaimsPrincipal principal)
    {
        var subject = principal.FindFirst(SubjectClaim)?.Value;
        var client = principal.FindFirst(ClientIdClaim)?.Value;
        var tenants = principal.FindAll(TenantClaim).Select(c => c.Value).ToArray();
        var kind = subject is not null && subject == client ? CallerKind.Client
            : client is not null && Actor(principal) == client ? CallerKind.Delegated
            : CallerKind.User;
        return new CryptoCaller(subject, client, kind, tenants);
    }

    /// <summary>
    /// The tenant binding (design.md, trust boundaries): the token must name the tenant (a user's token its user's, a
    /// client's token the client's registered tenants), and a token issued to a client reaches only tenants that client
    /// is registered for now. A token with no tenant reaches none (deny by default). Null when allowed, else why not.
    /// </summary>
    public async ValueTask<string?> TenantRefusalAsync(HttpContext http, string tenant)
    {
        if (Tenants.Count == 0)
        {
            return $"the access token is bound to no tenant, so it reaches none (register the client's tenants in Identity:Clients:N:Tenants), not {tenant}";
        }

        if (!Tenants.Contains(tenant, StringComparer.Ordinal))
        {
            return $"the access token is for tenant {string.Join(", ", Tenants)}, not {tenant}";
        }

        // A user's token names the user's tenant; the client it was issued to must serve that tenant too, as registered
        // now (a tenant removed from a client stops its tokens at once, not when they expire).
        if (ClientId is not null && await RegistrationAsync(http) is { } registration)
        {
            if (!registration.Found)
            {
                return $"client {ClientId} is no longer registered";
            }

            if (!registration.Tenants.Contains(tenant, StringComparer.Ordinal))
            {
                return registration.Tenants.Count == 0
                    ? $"client {ClientId} is registered for no tenant, so it reaches none, not {tenant}"
                    : $"client {ClientId} is registered for tenant {string.Join(", ", registration.Tenants)}, not {tenant}";
            }
        }

        return null;
    }

    /// <summary>
    /// Whether a record's location (owner, business unit, shares) declared in this request can be believed. Only the
    /// CRM app's back end, a confidential client that authenticated at the token endpoint, keeps the records and can
    /// vouch for where one lives: through its own token or a token it exchanged for a user (RFC 8693). A user's own
    /// token can be held by the user, who could claim to own any record, so its declaration is not believed.
    /// </summary>
    public async ValueTask<bool> MayDeclareRecordLocationAsync(HttpContext http) =>
        Kind is CallerKind.Client or CallerKind.Delegated && await RegistrationAsync(http) is { Found: true, Confidential: true };

    private async ValueTask<ClientRegistration?> RegistrationAsync(HttpContext http)
    {
        if (http.Items.TryGetValue(typeof(ClientRegistration), out var cached))
        {
            return (ClientRegistration?)cached;
        }

        ClientRegistration? registration = null;
        // Absent when the token issuer runs in another deployment: the token's own tenant claims are then the binding.
        if (ClientId is not null && http.RequestServices.GetService<ICryptoServiceClients>() is { } clients)
        {
            registration = await clients.FindAsync(ClientId, http.RequestAborted) is { } client
                ? new ClientRegistration(true, client.Confidential, client.Tenants)
                : new ClientRegistration(false, false, []);
        }

        http.Items[typeof(ClientRegistration)] = registration;
        return registration;
    }

    /// <summary>RFC 8693 §4.1: <c>act</c> is a JSON object whose <c>sub</c> names the acting party.</summary>
    private static string? Actor(ClaimsPrincipal principal)
    {
        var claim = principal.FindFirst(ActorClaim);
        if (claim is null)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(claim.Value);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty(SubjectClaim, out var sub) && sub.ValueKind == JsonValueKind.String
                ? sub.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record ClientRegistration(bool Found, bool Confidential, IReadOnlyList<string> Tenants);
}
