using CrmSecurity.Crypto.Hosting;
using CrmSecurity.Crypto.Providers;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Server.Hosting;

/// <summary>
/// The installation's key-encryption key (KEK), from <c>Crypto:MasterKey</c> (an environment variable, a key file or a
/// PKCS#11 token): every secret the service keeps in its database (the Data Protection key ring that wraps the token
/// signing keys, authenticator keys, the audit-chain key, the pseudonym key) is wrapped by it, and it is never stored
/// beside them, so a copy of the database alone can mint nothing and reveal nothing. Required in Production whether or
/// not the Crypto module's encryption service is on; outside Production a development key is generated when none is
/// configured (<see cref="DevelopmentMasterKey"/>).
/// </summary>
internal static class InstallationKey
{
    /// <param name="builder">The host.</param>
    /// <param name="service">The web service (checks the key at start, may generate a development key); false for verbs.</param>
    /// <param name="messages">Where to say which development key is used.</param>
    public static IHostApplicationBuilder AddInstallationKey(this IHostApplicationBuilder builder, bool service, TextWriter messages)
    {
        if (!builder.Environment.IsProduction() && builder.Configuration is IConfigurationManager configuration)
        {
            DevelopmentMasterKey.UseWhenNoneConfigured(configuration, generate: service, messages, createKeyring: ModuleSwitches.Read(builder.Configuration).Crypto);
        }

        // Bound here rather than through IOptions<CryptoOptions>, whose validator (the encryption service's checks) would
        // turn a missing key into an exception wherever the key is first needed instead of one exit-78 line at start.
        builder.Services.TryAddSingleton<IKeyEncryptionKey>(services =>
            KeyEncryptionKeys.Open(services.GetRequiredService<IConfiguration>().GetSection(CryptoOptions.Section).Get<CryptoOptions>() ?? new CryptoOptions()));
        if (service)
        {
            builder.Services.AddOptions<InstallationKeyCheck>().ValidateOnStart();
            builder.Services.AddSingleton<IValidateOptions<InstallationKeyCheck>, InstallationKeyValidator>();
        }

        return builder;
    }
}

/// <summary>Marker options: the KEK is opened at start, so a missing or wrong key is exit 78 naming the setting.</summary>
internal sealed class InstallationKeyCheck;

internal sealed class InstallationKeyValidator(IServiceProvider services) : IValidateOptions<InstallationKeyCheck>
{
    public ValidateOptionsResult Validate(string? name, InstallationKeyCheck options)
    {
        try
        {
            services.GetRequiredService<IKeyEncryptionKey>();
            return ValidateOptionsResult.Success;
        }
        catch (KeyManagementException e)
        {
            // The messages of KeyEncryptionKeys.Open start with the setting to fix and never hold key material.
            return ValidateOptionsResult.Fail(e.Message);
        }
    }
}
