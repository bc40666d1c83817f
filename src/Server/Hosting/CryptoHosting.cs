using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Hosting;
using CrmSecurity.Crypto.Service;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Server.Data;
using CrmSecurity.Server.EncryptionService;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Server.Hosting;

/// <summary>The Crypto module in this host: on the host's databases, its events where Identity's go, tokens from the host's issuer.</summary>
internal static class CryptoHosting
{
    /// <summary>
    /// The Crypto module: its tables in the host's database (checkpoints, shred tombstones) and, when the module is on,
    /// the subject-key store beside the keyring (<c>Crypto:SubjectKeys</c>), each created at start like every module's.
    /// With <paramref name="service"/> and the module on, also the HTTP encryption service. In Development without a
    /// configured master key the service generates one in the data directory (and the keyring under it) so it runs out of
    /// the box; every other environment must configure the key (start-up stops with exit 78 naming the setting).
    /// </summary>
    public static IHostApplicationBuilder AddCryptoModule(this IHostApplicationBuilder builder, bool service)
    {
        var configuration = builder.Configuration;
        var on = ModuleSwitches.Read(configuration).Crypto;
        if (service && on && builder.Environment.IsDevelopment() && configuration is IConfigurationManager settings)
        {
            DevelopmentMasterKey.UseWhenNoneConfigured(settings, generate: true, Console.Out);
        }

        // With Identity in this host, decrypt follows the authorization model's field security and the client registry;
        // without it, nothing decrypts and tokens' own tenant claims bind them.
        if (service && on && builder.Services.Any(d => d.ServiceType == typeof(IUnmaskedReads)))
        {
            builder.Services.AddSingleton<IUnmaskedFieldAccess, IdentityUnmaskedFieldAccess>();
            builder.Services.AddScoped<ICryptoServiceClients, IdentityCryptoClients>();
            builder.Services.AddSingleton<ICryptoAdministrators, IdentityCryptoAdministrators>();
        }

        builder.AddCrypto(crypto =>
        {
            crypto.Enabled = on;
            crypto.Database = DatabaseSetup.Configure;
            crypto.SubjectKeyStore = SubjectKeyDatabase.Configure;
            crypto.Tables = ModuleSchema.Registrar(builder.Services);
            // Decrypts and shreds reach the access-event writer Identity uses, as well as the module's JSON Lines file.
            crypto.Events = services => new CryptoEventBridge(
                new JsonLinesEventSink(Path.GetFullPath(services.GetRequiredService<IOptions<CryptoOptions>>().Value.AccessEventLog, Environment.CurrentDirectory)),
                services);
            crypto.Service = service && on;
            crypto.Bearer = (authentication, scheme, audience) => authentication.AddHostBearer(configuration, scheme, audience);
        });

        builder.Services.AddSingleton<IValidateOptions<CryptoOptions>, SubjectKeyDatabaseValidator>();
        return builder;
    }

    /// <summary>A verb's host with the Crypto module switched on (so its settings are validated before the verb runs).</summary>
    public static HostApplicationBuilder CreateVerbBuilder(bool requireKeyring = true)
    {
        var builder = CliHost.CreateBuilder();
        builder.Configuration[ModuleSwitches.CryptoSetting] = "true";
        builder.Configuration[ModuleSwitches.CryptoOlderSetting] = "true";
        builder.Configuration["Crypto:RequireKeyring"] = requireKeyring ? "true" : "false";
        builder.AddCryptoModule(service: false);
        return builder;
    }
}
