using CrmSecurity.Crypto.Service;
using CrmSecurity.Identity.Contracts;

namespace CrmSecurity.Server.EncryptionService;

/// <summary>The encryption service's view of a token's client, from Identity's client registry (<see cref="IRegisteredClients"/>).</summary>
internal sealed class IdentityCryptoClients(IRegisteredClients clients) : ICryptoServiceClients
{
    public async ValueTask<CryptoServiceClient?> FindAsync(string clientId, CancellationToken cancellationToken) =>
        await clients.FindAsync(clientId, cancellationToken) is { } client ? new CryptoServiceClient(client.Confidential, client.Tenants) : null;
}
