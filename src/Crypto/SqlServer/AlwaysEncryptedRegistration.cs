using CrmSecurity.Crypto.Providers;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrmSecurity.Crypto.SqlServer;

/// <summary>
/// Registers <see cref="KeyringColumnMasterKeyStoreProvider"/> with <c>Microsoft.Data.SqlClient</c> when the host starts,
/// once per process, so SQL Server connections of this host with <c>Column Encryption Setting=Enabled</c> open column
/// encryption keys whose column master key is the installation's KEK.
/// </summary>
internal sealed partial class AlwaysEncryptedRegistration(IKeyEncryptionKey kek, ILogger<AlwaysEncryptedRegistration> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (KeyringColumnMasterKeyStoreProvider.Register(kek))
        {
            Registered(logger, KeyringColumnMasterKeyStoreProvider.Name, kek.KeyId);
        }
        else
        {
            NotRegistered(logger, KeyringColumnMasterKeyStoreProvider.Name);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        KeyringColumnMasterKeyStoreProvider.Unregister(kek);
        return Task.CompletedTask;
    }

    [LoggerMessage(EventId = 3110, Level = LogLevel.Information, Message = "SQL Server Always Encrypted: key store provider {Provider} resolves column master key {KeyPath}")]
    private static partial void Registered(ILogger logger, string provider, string keyPath);

    [LoggerMessage(EventId = 3111, Level = LogLevel.Warning, Message = "SQL Server Always Encrypted: key store provider {Provider} is not registered because another component registered SqlClient's custom key store providers first (SqlClient allows that once per process)")]
    private static partial void NotRegistered(ILogger logger, string provider);
}
