using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Clients;

/// <summary>
/// Creates or updates clients and API scopes. The start-up sync (<see cref="ClientSync"/>) uses it for the
/// clients in configuration; the admin API (issue 5) calls the same methods.
/// Every client gets explicit permissions: endpoints, grant types, scopes and exact redirect URIs.
/// </summary>
internal sealed class ClientRegistry(
    IOpenIddictApplicationManager applications,
    IOpenIddictScopeManager scopes,
    VerifiedSecretCache verifiedSecrets,
    Protocol.ScopeResources scopeResources)
{
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
        var confidential = !string.IsNullOrEmpty(client.ClientSecret);
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = client.ClientId,
            ClientSecret = client.ClientSecret, // stored as a PBKDF2 hash by OpenIddict, never in clear
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

        if (grants.Contains(GrantTypes.TokenExchange))
        {
            permissions.Add(Permissions.GrantTypes.TokenExchange);
        }

        foreach (var scope in client.Scopes)
        {
            // openid needs no permission in OpenIddict; every other scope does.
            if (scope != Scopes.OpenId)
            {
                permissions.Add(Permissions.Prefixes.Scope + scope);
            }
        }

        foreach (var uri in client.RedirectUris)
        {
            descriptor.RedirectUris.Add(new Uri(uri, UriKind.Absolute));
        }

        foreach (var uri in client.PostLogoutRedirectUris)
        {
            descriptor.PostLogoutRedirectUris.Add(new Uri(uri, UriKind.Absolute));
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
