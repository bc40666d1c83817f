using CrmSecurity.Identity.Clients;
using CrmSecurity.Identity.Protocol;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Contracts;

/// <summary>The claims of this server's tokens that other modules read.</summary>
public static class IdentityClaims
{
    /// <summary>A tenant the token reaches (one claim per tenant).</summary>
    public const string Tenant = ClaimsContract.Tenant;
}

/// <summary>The OIDC clients registered with Identity, for a module that must know more about a caller's client than its token says.</summary>
public interface IRegisteredClients
{
    /// <summary>The client, or null when no client has <paramref name="clientId"/>.</summary>
    ValueTask<RegisteredClient?> FindAsync(string clientId, CancellationToken cancellationToken);
}

/// <summary>One registered client.</summary>
/// <param name="ClientId">Its client id.</param>
/// <param name="Confidential">True for a confidential client (it authenticates at the token endpoint).</param>
/// <param name="Tenants">The tenants it may act on (<c>Identity:Clients:N:Tenants</c>).</param>
public sealed record RegisteredClient(string ClientId, bool Confidential, IReadOnlyList<string> Tenants);

internal sealed class OpenIddictRegisteredClients(IOpenIddictApplicationManager applications) : IRegisteredClients
{
    public async ValueTask<RegisteredClient?> FindAsync(string clientId, CancellationToken cancellationToken)
    {
        var application = await applications.FindByClientIdAsync(clientId, cancellationToken);
        return application is null
            ? null
            : new RegisteredClient(
                clientId,
                await applications.HasClientTypeAsync(application, ClientTypes.Confidential, cancellationToken),
                await ClientRegistry.TenantsAsync(applications, application, cancellationToken));
    }
}
