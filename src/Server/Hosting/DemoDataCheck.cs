using CrmSecurity.Identity.Contracts;
using OpenIddict.Abstractions;

namespace CrmSecurity.Server.Hosting;

/// <summary>
/// In Production, start-up refuses a database that holds the demo clients: their secrets are printed by demo mode and
/// published in docs/identity.md ("Try it"), so anyone could get tokens for them (a database seeded in Development and then promoted is
/// the usual way they get there). Demo mode itself is refused in Production by Identity's settings check.
/// </summary>
internal sealed class DemoDataCheck(IServiceScopeFactory scopes, IHostEnvironment environment) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!environment.IsProduction())
        {
            return;
        }

        await using var scope = scopes.CreateAsyncScope();
        if (scope.ServiceProvider.GetService<IOpenIddictApplicationManager>() is not { } applications)
        {
            return; // Identity is not in this host
        }

        var found = new List<string>();
        foreach (var clientId in IdentityDemo.ClientIds)
        {
            if (await applications.FindByClientIdAsync(clientId, cancellationToken) is not null)
            {
                found.Add(clientId);
            }
        }

        if (found.Count > 0)
        {
            throw new ConfigurationException(
                $"Identity:DemoMode: the database holds the demo clients {string.Join(", ", found)}, whose secrets are published; Production refuses to start with them. " +
                "Start from a database that never ran in demo mode, or delete those clients (and the demo users) first.");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
