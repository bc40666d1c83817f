using System.Collections.Immutable;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Clients;

/// <summary>
/// Creates or updates clients and API scopes. The start-up sync (<see cref="ClientSync"/>) uses it for the
/// clients in configuration; the admin API calls the same methods.
/// Every client gets explicit permissions: endpoints, grant types, scopes and exact redirect URIs.
/// </summary>
internal sealed class ClientRegistry(
    IOpenIddictApplicationManager applications,
    IOpenIddictScopeManager scopes,
    VerifiedSecretCache verifiedSecrets,
    Protocol.ScopeResources scopeResources,
    IOptions<IdentitySettings> settings)
{
    /// <summary>The application property holding a client's tenants (a JSON array of strings).</summary>
    public const string TenantsProperty = "crm_security_tenants";

    /// <summary>Longest tenant id: the width of a user's tenant column.</summary>
    public const int MaxTenantLength = 100;

    /// <summary>
    /// Scopes that reach one tenant's data (keys, values, access events). A client holding one must name its tenants:
    /// without them it would reach none, and before tenants existed such a client reached every tenant, so a
    /// configuration from then is refused at start rather than silently losing (or keeping) access.
    /// </summary>
    public static readonly ImmutableArray<string> TenantBoundScopes = ["crypto:encrypt", "crypto:decrypt", "crypto:index", "crypto:rewrap", "events:write"];

    /// <summary>Checks <see cref="ClientSettings.Tenants"/>: present when a tenant-bound scope needs it, each a plain id, no repeats.</summary>
    public static void ValidateTenants(ClientSettings client, string path, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(errors);
        var bound = client.Scopes.Where(scope => TenantBoundScopes.Contains(scope, StringComparer.Ordinal)).ToList();
        if (client.Tenants.Count == 0 && bound.Count > 0)
        {
            // Deny by default: a client bound to no tenant reaches no tenant's data; say so at start instead of at the first 403.
            errors.Add($"{path}:Tenants is required for client '{client.ClientId}', whose scopes {string.Join(", ", bound)} reach a tenant's data. " +
                "List the tenants it serves, e.g. \"Tenants\": [ \"acme\" ] (a client without tenants reaches no tenant; before this version it reached every tenant).");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (tenant, index) in client.Tenants.Select((t, i) => (t, i)))
        {
            if (string.IsNullOrWhiteSpace(tenant) || tenant.Length > MaxTenantLength || tenant.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)) || tenant.Contains('*', StringComparison.Ordinal))
            {
                // No wildcard: every tenant a client reaches is named (deny by default).
                errors.Add($"{path}:Tenants:{index} of client '{client.ClientId}' must be a tenant id of 1 to {MaxTenantLength} characters without spaces or wildcards.");
            }
            else if (!seen.Add(tenant))
            {
                errors.Add($"{path}:Tenants:{index} of client '{client.ClientId}' repeats tenant '{tenant}'.");
            }
        }
    }

    /// <summary>The tenants a registered client serves (empty when none were given: it then reaches no tenant).</summary>
    public static async ValueTask<IReadOnlyList<string>> TenantsAsync(IOpenIddictApplicationManager applications, object application, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(applications);
        var properties = await applications.GetPropertiesAsync(application, cancellationToken);
        return properties.TryGetValue(TenantsProperty, out var tenants) && tenants.ValueKind == JsonValueKind.Array
            ? [.. tenants.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString()!)]
            : [];
    }

    public async Task RegisterScopeAsync(ApiScopeSettings scope, CancellationToken cancellationToken)
    {
        var descriptor = new OpenIddictScopeDescriptor { Name = scope.Name, DisplayName = scope.DisplayName ?? scope.Name };
        descriptor.Resources.Add(scope.Audience);
        if (await scopes.FindByNameAsync(scope.Name, cancellationToken) is { } existing)
        {
            await scopes.UpdateAsync(existing, descriptor, cancellationToken);
        }
        else
        {
            await scopes.CreateAsync(descriptor, cancellationToken);
        }

        scopeResources.Clear();
    }

    /// <summary>Creates the client, or replaces its registration (and secret) when it exists.</summary>
    public async Task RegisterAsync(ClientSettings client, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var errors = new List<string>();
        ValidateTenants(client, $"client '{client.ClientId}'", errors);
        ClientKeys.Validate(client, $"client '{client.ClientId}'", errors);
        ClientJwksUri.Validate(client, $"client '{client.ClientId}'", settings.Value.ClientJwks, errors);
        Protocol.BackchannelLogout.Validate(client, $"client '{client.ClientId}'", settings.Value.ClientJwks, errors);
        if (errors.Count > 0)
        {
            // Clients registered from code get the same check as those in configuration.
            throw new ArgumentException(string.Join(" ", errors), nameof(client));
        }

        var descriptor = Describe(client);
        // Read the client fresh (not from the per-process cache) so the update works on a tracked, current row.
        verifiedSecrets.Clear();
        if (await applications.FindByClientIdAsync(client.ClientId, cancellationToken) is { } existing)
        {
            await applications.UpdateAsync(existing, descriptor, cancellationToken);
            verifiedSecrets.Clear();
        }
        else
        {
            await applications.CreateAsync(descriptor, cancellationToken);
        }
    }

    internal static OpenIddictApplicationDescriptor Describe(ClientSettings client)
    {
        // A client with keys is confidential even without a secret: it proves possession of its private key instead
        // (RFC 7523 §2.2). Without a secret it is key-only, and OpenIddict refuses any client_secret it sends.
        var confidential = !string.IsNullOrEmpty(client.ClientSecret) || ClientKeys.HasKeys(client) || ClientJwksUri.HasUri(client);
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = client.ClientId,
            ClientSecret = string.IsNullOrEmpty(client.ClientSecret) ? null : client.ClientSecret, // stored as a PBKDF2 hash by OpenIddict, never in clear
            JsonWebKeySet = ClientKeys.HasKeys(client) ? ClientKeys.Parse(client.Jwks!)
                : ClientJwksUri.HasUri(client) ? ClientJwksUri.UnusableKeySet()
                : null,
            DisplayName = client.DisplayName ?? client.ClientId,
            ClientType = confidential ? ClientTypes.Confidential : ClientTypes.Public,
            // Third-party clients show the consent page once per scope set; first-party clients are trusted.
            ConsentType = client.FirstParty ? ConsentTypes.Implicit : ConsentTypes.Explicit,
        };

        var permissions = descriptor.Permissions;
        var grants = client.GrantTypes.ToHashSet(StringComparer.Ordinal);
        permissions.Add(Permissions.Endpoints.Token);
        if (confidential)
        {
            permissions.Add(Permissions.Endpoints.Introspection);
        }

        permissions.Add(Permissions.Endpoints.Revocation);

        if (grants.Contains(GrantTypes.AuthorizationCode))
        {
            permissions.Add(Permissions.Endpoints.Authorization);
            permissions.Add(Permissions.Endpoints.PushedAuthorization);
            permissions.Add(Permissions.Endpoints.EndSession);
            permissions.Add(Permissions.GrantTypes.AuthorizationCode);
            permissions.Add(Permissions.ResponseTypes.Code);
            // RFC 9700 §2.1.1: PKCE for every client, confidential ones included.
            descriptor.Requirements.Add(Requirements.Features.ProofKeyForCodeExchange);
        }

        if (client.RequirePushedAuthorization)
        {
            descriptor.Requirements.Add(Requirements.Features.PushedAuthorizationRequests);
        }

        if (grants.Contains(GrantTypes.ClientCredentials))
        {
            permissions.Add(Permissions.GrantTypes.ClientCredentials);
        }

        if (grants.Contains(GrantTypes.RefreshToken))
        {
            permissions.Add(Permissions.GrantTypes.RefreshToken);
        }

        if (grants.Contains(GrantTypes.DeviceCode))
        {
            // RFC 8628: off by default; only a client whose configuration lists the grant may start a device flow.
            permissions.Add(Permissions.Endpoints.DeviceAuthorization);
            permissions.Add(Permissions.GrantTypes.DeviceCode);
        }

        if (grants.Contains(GrantTypes.TokenExchange))
        {
            permissions.Add(Permissions.GrantTypes.TokenExchange);
        }

        foreach (var scope in client.Scopes.Distinct(StringComparer.Ordinal))
        {
            // openid needs no permission in OpenIddict; every other scope does. openid's is kept all the same, so the
            // registration says which scopes the client was given (the admin API shows them).
            permissions.Add(Permissions.Prefixes.Scope + scope);
        }

        foreach (var uri in client.RedirectUris)
        {
            descriptor.RedirectUris.Add(new Uri(uri, UriKind.Absolute));
        }

        foreach (var uri in client.PostLogoutRedirectUris)
        {
            descriptor.PostLogoutRedirectUris.Add(new Uri(uri, UriKind.Absolute));
        }

        // Stored with the registration (not only in configuration), so a client registered from code keeps its tenants too.
        descriptor.Properties[TenantsProperty] = JsonSerializer.SerializeToElement(client.Tenants.Distinct(StringComparer.Ordinal).ToArray());
        if (ClientJwksUri.HasUri(client))
        {
            descriptor.Properties[ClientJwksUri.Property] = JsonSerializer.SerializeToElement(client.JwksUri!.Trim());
        }

        // MFA policy and back-channel logout, stored with the registration like the tenants (read by Protocol.StepUp and
        // Protocol.BackchannelLogout), so a client registered from code has them too.
        if (client.RequireMfa)
        {
            descriptor.Properties[Protocol.StepUp.RequireMfaProperty] = JsonSerializer.SerializeToElement(true);
        }

        // RFC 9449 §5.2 dpop_bound_access_tokens, read by Protocol.Dpop at the token endpoint.
        if (client.RequireDpop)
        {
            descriptor.Properties[Protocol.Dpop.ValidateDpopProofAtTokenEndpoint.RequireDpopProperty] = JsonSerializer.SerializeToElement(true);
        }

        if (!string.IsNullOrWhiteSpace(client.BackchannelLogoutUri))
        {
            descriptor.Properties[Protocol.BackchannelLogout.UriProperty] = JsonSerializer.SerializeToElement(client.BackchannelLogoutUri.Trim());
            descriptor.Properties[Protocol.BackchannelLogout.SessionRequiredProperty] = JsonSerializer.SerializeToElement(client.BackchannelLogoutSessionRequired);
        }

        return descriptor;
    }
}

/// <summary>Registers the API scopes and clients from configuration when the host starts.</summary>
internal sealed class ClientSync(IServiceScopeFactory scopes, IOptions<IdentitySettings> settings) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var registry = scope.ServiceProvider.GetRequiredService<ClientRegistry>();
        foreach (var apiScope in settings.Value.ApiScopes)
        {
            await registry.RegisterScopeAsync(apiScope, cancellationToken);
        }

        foreach (var client in settings.Value.Clients)
        {
            await registry.RegisterAsync(client, cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
