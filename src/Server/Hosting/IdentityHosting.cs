using CrmSecurity.Identity;
using CrmSecurity.Server.Data;

namespace CrmSecurity.Server.Hosting;

internal static class IdentityHosting
{
    /// <summary>
    /// The Identity module on the host's database, with its tables created at start like every module's; with
    /// <paramref name="auditTrailReaderOnly"/> only what reading the audit trail needs (a verb that writes nothing).
    /// </summary>
    public static IHostApplicationBuilder AddIdentityModule(this IHostApplicationBuilder builder, bool auditTrailReaderOnly = false) =>
        builder.AddIdentity(identity =>
        {
            identity.Database = DatabaseSetup.Configure;
            identity.Tables = ModuleSchema.Registrar(builder.Services);
            identity.AuditTrailReaderOnly = auditTrailReaderOnly;
        });

    /// <summary>A verb's host with the Identity module (its settings are validated before the verb runs).</summary>
    public static HostApplicationBuilder CreateVerbBuilder()
    {
        var builder = CliHost.CreateBuilder();
        builder.AddIdentityModule();
        return builder;
    }
}
