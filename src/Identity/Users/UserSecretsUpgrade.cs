using CrmSecurity.Crypto.Providers;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// Start-up step after the schema step: authenticator keys and recovery codes an older build stored in clear are sealed
/// and digested in place. Idempotent (converted values are recognised and left alone), so every
/// start and every instance may run it; a user enrolled before keeps signing in with the same authenticator app and the
/// codes not used yet. Values are never logged, only how many were converted. On SQLite the clear bytes are overwritten
/// in the file; on PostgreSQL and SQL Server the old row versions stay until the server reclaims them (VACUUM, ghost
/// cleanup) and in their transaction logs, as for any update there.
/// </summary>
internal sealed partial class UserSecretsUpgrade(IServiceScopeFactory scopes, UserSecretProtection protection, ILogger<UserSecretsUpgrade> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
        var tokens = await store.UserTokens
            .Where(token => token.LoginProvider == CrmUserStore.InternalLoginProvider
                && (token.Name == CrmUserStore.AuthenticatorKeyTokenName || token.Name == CrmUserStore.RecoveryCodesTokenName))
            .ToListAsync(cancellationToken);

        int keys = 0, codeSets = 0;
        foreach (var token in tokens.Where(token => !string.IsNullOrEmpty(token.Value)))
        {
            if (token.Name == CrmUserStore.AuthenticatorKeyTokenName && !SecretBox.IsSealed(token.Value))
            {
                token.Value = await protection.SealAuthenticatorKeyAsync(token.UserId, token.Value!, cancellationToken);
                keys++;
            }
            else if (token.Name == CrmUserStore.RecoveryCodesTokenName && !token.Value!.StartsWith(UserSecretProtection.HashedCodesPrefix, StringComparison.Ordinal))
            {
                token.Value = await protection.ToHashedAsync(token.Value, cancellationToken);
                codeSets++;
            }
        }

        if (keys + codeSets == 0)
        {
            return;
        }

        // SQLite keeps a replaced value's bytes in the page's free space: the clear key would still be in the file. With
        // secure_delete on for this write, SQLite overwrites the freed space with zeros (https://sqlite.org/pragma.html#pragma_secure_delete),
        // and the checkpoint puts that page over the old one in the database file.
        var sqlite = store.Database.ProviderName == "Microsoft.EntityFrameworkCore.Sqlite";
        await store.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            if (sqlite)
            {
                await store.Database.ExecuteSqlRawAsync("PRAGMA secure_delete = ON", cancellationToken);
            }

            await store.SaveChangesAsync(cancellationToken);
            if (sqlite)
            {
                // In WAL mode the zeroed page is only in the log and the file keeps the old page until a checkpoint:
                // copy it into the file now and empty the log (no-op in rollback-journal mode).
                await store.Database.ExecuteSqlRawAsync("PRAGMA wal_checkpoint(TRUNCATE)", cancellationToken);
            }
        }
        finally
        {
            if (sqlite)
            {
                await store.Database.ExecuteSqlRawAsync("PRAGMA secure_delete = OFF", CancellationToken.None);
            }

            await store.Database.CloseConnectionAsync();
        }

        LogConverted(logger, keys, codeSets);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 4500, EventName = "SecondFactorSecretsProtected", Level = LogLevel.Information,
        Message = "Protected second-factor secrets stored in clear by an older build: {AuthenticatorKeys} authenticator keys encrypted, {RecoveryCodeSets} recovery-code sets hashed")]
    private static partial void LogConverted(ILogger logger, int authenticatorKeys, int recoveryCodeSets);
}
