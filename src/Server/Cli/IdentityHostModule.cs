using CrmSecurity.Identity;
using CrmSecurity.Server.Data;
using CrmSecurity.Server.Hosting;

namespace CrmSecurity.Server.Cli;

internal static class IdentityHostModule
{
    /// <summary>The Identity module on the host's database, with its tables created at start like every module's.</summary>
    public static IHostApplicationBuilder AddIdentityModule(this IHostApplicationBuilder builder)
    {
        builder.AddIdentity(DatabaseSetup.Configure);
        builder.Services.AddSingleton(new ModuleSchema("identity", IdentityModule.StoreType, IdentityModule.SchemaVersion));
        return builder;
    }

    /// <summary>A verb's host with the Identity module (its settings are validated before the verb runs).</summary>
    public static HostApplicationBuilder CreateVerbBuilder()
    {
        var builder = CliHost.CreateBuilder();
        builder.AddIdentityModule();
        return builder;
    }
}
