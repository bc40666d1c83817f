using System.Collections.Concurrent;
using OpenIddict.Abstractions;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// Which audiences (resources) each API scope grants, kept in memory for a minute: every token request needs
/// it, and the scope table changes rarely. Registering a scope through <see cref="Clients.ClientRegistry"/>
/// clears it at once on this instance; other instances see the change within the minute.
/// </summary>
internal sealed class ScopeResources(IServiceScopeFactory scopes, TimeProvider time)
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, (string[] Resources, DateTimeOffset Until)> _cache = new(StringComparer.Ordinal);

    public async Task<List<string>> ForAsync(IEnumerable<string> granted, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var resources = new List<string>();
        foreach (var scope in granted)
        {
            if (!_cache.TryGetValue(scope, out var entry) || entry.Until < now)
            {
                entry = (await LoadAsync(scope, cancellationToken), now + Lifetime);
                _cache[scope] = entry;
            }

            foreach (var resource in entry.Resources)
            {
                if (!resources.Contains(resource, StringComparer.Ordinal))
                {
                    resources.Add(resource);
                }
            }
        }

        return resources;
    }

    public void Clear() => _cache.Clear();

    private async Task<string[]> LoadAsync(string scope, CancellationToken cancellationToken)
    {
        await using var serviceScope = scopes.CreateAsyncScope();
        var manager = serviceScope.ServiceProvider.GetRequiredService<IOpenIddictScopeManager>();
        var resources = new List<string>();
        await foreach (var resource in manager.ListResourcesAsync([scope], cancellationToken))
        {
            resources.Add(resource);
        }

        return [.. resources];
    }
}
