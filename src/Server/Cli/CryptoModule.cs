using CrmSecurity.Crypto.Hosting;
using CrmSecurity.Crypto.Subjects;
using CrmSecurity.Server.Data;
using CrmSecurity.Server.Hosting;

namespace CrmSecurity.Server.Cli;

internal static class CryptoModule
{
    /// <summary>The Crypto module on the host's database, with its tables created at start like every module's.</summary>
    public static IHostApplicationBuilder AddCryptoModule(this IHostApplicationBuilder builder)
    {
        builder.AddCrypto(DatabaseSetup.Configure);
        builder.Services.AddSingleton(new ModuleSchema("crypto", typeof(CryptoDbContext), CryptoDbContext.SchemaVersion));
        return builder;
    }

    /// <summary>A verb's host with the Crypto module switched on (so its settings are validated before the verb runs).</summary>
    public static HostApplicationBuilder CreateVerbBuilder(bool requireKeyring = true)
    {
        var builder = CliHost.CreateBuilder();
        builder.Configuration["Crypto:Enabled"] = "true";
        builder.Configuration["Crypto:RequireKeyring"] = requireKeyring ? "true" : "false";
        builder.AddCryptoModule();
        return builder;
    }
}
