using System.Security.Cryptography;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Crypto.Providers;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>
/// The installation's pseudonym key: 32 random bytes made at first use, stored in the database only wrapped by the
/// installation's key-encryption key (<see cref="WrappedSecret"/>, RFC 5649), so every instance shows the same pseudonyms
/// while a reader of the database (or of a backup) cannot compute anyone's pseudonym (OWASP ASVS 4.0.3 V6.4.1, V8.3.7).
/// A key stored in the clear by an older build is wrapped at start with the same value, so pseudonyms do not change.
/// Call outside a transaction (a lost race re-reads the winner's key). Never logged.
/// </summary>
internal sealed class PseudonymKeys(IKeyEncryptionKey kek)
{
    public const string SettingKey = "pseudonym_key";
    private byte[]? _key;

    public async ValueTask<byte[]> GetAsync(LiveDbContext db, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _key) is { } known)
        {
            return known;
        }

        for (var attempt = 0; ; attempt++)
        {
            var stored = await db.ReviewSettings.AsNoTracking().Where(s => s.Key == SettingKey).Select(s => s.Value).FirstOrDefaultAsync(cancellationToken);
            if (stored is not null)
            {
                var key = WrappedSecret.IsWrapped(stored) ? Unwrap(stored) : Convert.FromBase64String(stored);
                Volatile.Write(ref _key, key);
                return key;
            }

            // Race-safe between instances: insert, and on a unique-key conflict read the winner's.
            var row = new ReviewSettingRow { Key = SettingKey, Value = WrappedSecret.Create(kek, 32, out var secret) };
            db.ReviewSettings.Add(row);
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                Volatile.Write(ref _key, secret);
                return secret;
            }
            catch (DbUpdateException) when (attempt < 3)
            {
                // Another instance stored its key first: use that one.
                CryptographicOperations.ZeroMemory(secret);
            }
            finally
            {
                db.Entry(row).State = EntityState.Detached;
            }
        }
    }

    /// <summary>
    /// Wraps a key an older build stored in the clear, keeping its value (idempotent: a wrapped key is left alone; the
    /// update only applies while the row still holds the clear value, so two instances upgrading at once agree). A
    /// wrapped key that this host's KEK cannot open stops start-up naming <c>Crypto:MasterKey</c>. True when it wrapped.
    /// </summary>
    public async Task<bool> UpgradeAsync(LiveDbContext db, CancellationToken cancellationToken)
    {
        var stored = await db.ReviewSettings.AsNoTracking().Where(s => s.Key == SettingKey).Select(s => s.Value).FirstOrDefaultAsync(cancellationToken);
        if (stored is null)
        {
            return false;
        }

        if (WrappedSecret.IsWrapped(stored))
        {
            CryptographicOperations.ZeroMemory(Unwrap(stored));
            return false;
        }

        var clear = Convert.FromBase64String(stored);
        try
        {
            var wrapped = WrappedSecret.Wrap(kek, clear);
            return await db.ReviewSettings.Where(s => s.Key == SettingKey && s.Value == stored)
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.Value, wrapped), cancellationToken) == 1;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(clear);
        }
    }

    private byte[] Unwrap(string stored)
    {
        try
        {
            return WrappedSecret.Unwrap(kek, stored);
        }
        catch (KeyManagementException e)
        {
            // The message names KEK ids, never key material; it starts with the setting to fix (exit 78 at start).
            throw new KeyManagementException($"Crypto:MasterKey cannot unwrap the analyzer's pseudonym key: {e.Message}", e);
        }
    }
}

/// <summary>Start-up step after the schema step: the pseudonym key of an older database is wrapped by the installation's KEK.</summary>
internal sealed partial class PseudonymKeyUpgrade(IServiceScopeFactory scopes, PseudonymKeys keys, ILogger<PseudonymKeyUpgrade> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        if (await keys.UpgradeAsync(scope.ServiceProvider.GetRequiredService<LiveDbContext>(), cancellationToken))
        {
            LogWrapped(logger);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 6120, Level = LogLevel.Warning, Message = "The analyzer's pseudonym key was stored in the clear; it is now wrapped by the installation's key-encryption key (same value, pseudonyms unchanged)")]
    private static partial void LogWrapped(ILogger logger);
}
