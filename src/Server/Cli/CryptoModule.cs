using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Hosting;
using CrmSecurity.Crypto.Subjects;
using CrmSecurity.Server.EncryptionService;
using CrmSecurity.Server.Data;
using CrmSecurity.Server.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Server.Cli;

internal static class CryptoModule
{
    /// <summary>
    /// The Crypto module: its tables in the host's database (checkpoints, shred tombstones) and, when the module is on,
    /// the subject-key store beside the keyring (<c>Crypto:SubjectKeys</c>), each created at start like every module's.
    /// </summary>
    public static IHostApplicationBuilder AddCryptoModule(this IHostApplicationBuilder builder)
    {
        // Registered before AddCrypto (which only adds its file sink when none is): decrypts and shreds reach the
        // access-event writer Identity uses, as well as the module's JSON Lines file.
        builder.Services.TryAddSingleton<ICryptoEventSink>(services => new CryptoEventBridge(
            new JsonLinesEventSink(Path.GetFullPath(services.GetRequiredService<IOptions<CryptoOptions>>().Value.AccessEventLog, Environment.CurrentDirectory)),
            services));
        builder.AddCrypto(DatabaseSetup.Configure, SubjectKeyDatabase.Configure);
        // The library's own Crypto:Enabled (whether its settings are checked) follows the host's module switch.
        var on = CryptoServiceModule.IsOn(builder.Configuration);
        builder.Services.PostConfigure<CryptoOptions>(options => options.Enabled = on);
        builder.Services.AddSingleton<IValidateOptions<CryptoOptions>, SubjectKeyDatabaseValidator>();
        builder.Services.AddSingleton(new ModuleSchema("crypto", typeof(CryptoDbContext), CryptoDbContext.SchemaVersion));
        if (on)
        {
            builder.Services.AddSingleton(new ModuleSchema("crypto-subject-keys", typeof(SubjectKeyDbContext), SubjectKeyDbContext.SchemaVersion));
        }

        return builder;
    }

    /// <summary>A verb's host with the Crypto module switched on (so its settings are validated before the verb runs).</summary>
    public static HostApplicationBuilder CreateVerbBuilder(bool requireKeyring = true)
    {
        var builder = CliHost.CreateBuilder();
        builder.Configuration[ModuleSwitches.CryptoSetting] = "true";
        builder.Configuration[ModuleSwitches.CryptoOlderSetting] = "true";
        builder.Configuration["Crypto:RequireKeyring"] = requireKeyring ? "true" : "false";
        builder.AddCryptoModule();
        return builder;
    }
}
