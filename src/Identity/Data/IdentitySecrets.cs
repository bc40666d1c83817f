using System.Collections.Concurrent;
using System.Security.Cryptography;
using CrmSecurity.Crypto.Providers;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace CrmSecurity.Identity.Data;

/// <summary>A named secret of the Identity module, stored wrapped by the installation's key-encryption key.</summary>
internal sealed class IdentitySecretRecord
{
    public string Name { get; set; } = "";

    /// <summary><see cref="WrappedSecret"/> text: <c>kwp1:&lt;kek id&gt;:&lt;base64&gt;</c>. Never the secret itself.</summary>
    public string Value { get; set; } = "";

    public DateTimeOffset CreatedAt { get; set; }
}

internal sealed partial class IdentityStore
{
    public DbSet<IdentitySecretRecord> Secrets => Set<IdentitySecretRecord>();

    private static void ConfigureSecrets(ModelBuilder builder) =>
        builder.Entity<IdentitySecretRecord>(secret =>
        {
            secret.ToTable("identity_secrets");
            secret.HasKey(s => s.Name);
            secret.Property(s => s.Name).HasMaxLength(100);
            secret.Property(s => s.Value).HasMaxLength(1000);
            secret.Property(s => s.CreatedAt).HasConversion<DateTimeOffsetToBinaryConverter>();
        });
}

/// <summary>
/// The Identity module's own secrets (keys that protect authenticator keys, recovery codes, ...), each made on first use
/// and kept in the module's database only wrapped by the installation's key-encryption key (RFC 5649), which is never
/// stored beside them: a copy of the database alone opens none of them (OWASP ASVS 4.0.3 V6.4.1).
/// Creation is race-safe between instances (insert; on a key conflict the winner's secret is read). Unwrapped secrets
/// are kept in this process's memory only.
/// </summary>
internal sealed class IdentitySecrets(IServiceScopeFactory scopes, IKeyEncryptionKey kek, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Lazy<Task<byte[]>>> _secrets = new(StringComparer.Ordinal);

    /// <summary>A copy of the 32-byte secret called <paramref name="name"/>, made now if the installation has none yet; zero it when done.</summary>
    public async Task<byte[]> GetAsync(string name, CancellationToken cancellationToken)
    {
        var lazy = _secrets.GetOrAdd(name, key => new Lazy<Task<byte[]>>(() => LoadOrCreateAsync(key, CancellationToken.None)));
        try
        {
            return (await lazy.Value.WaitAsync(cancellationToken)).ToArray();
        }
        catch (Exception) when (lazy.Value.IsFaulted)
        {
            // A failed load (database down, wrong KEK) is not cached: the next caller tries again.
            _secrets.TryRemove(new KeyValuePair<string, Lazy<Task<byte[]>>>(name, lazy));
            throw;
        }
    }

    private async Task<byte[]> LoadOrCreateAsync(string name, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
        if (await store.Secrets.AsNoTracking().SingleOrDefaultAsync(s => s.Name == name, cancellationToken) is { } existing)
        {
            return WrappedSecret.Unwrap(kek, existing.Value);
        }

        var stored = WrappedSecret.Create(kek, 32, out var secret);
        store.Secrets.Add(new IdentitySecretRecord { Name = name, Value = stored, CreatedAt = time.GetUtcNow() });
        try
        {
            await store.SaveChangesAsync(cancellationToken);
            return secret;
        }
        catch (DbUpdateException)
        {
            // Another instance made it first: use theirs, so every instance protects with the same key.
            CryptographicOperations.ZeroMemory(secret);
            await using var again = scopes.CreateAsyncScope();
            var winner = await again.ServiceProvider.GetRequiredService<IdentityStore>().Secrets.AsNoTracking()
                .SingleAsync(s => s.Name == name, cancellationToken);
            return WrappedSecret.Unwrap(kek, winner.Value);
        }
    }
}
