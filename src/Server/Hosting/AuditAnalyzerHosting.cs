using CrmSecurity.AuditAnalyzer;
using CrmSecurity.AuditAnalyzer.Cli;
using CrmSecurity.AuditAnalyzer.Export;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Identity.Protocol;
using CrmSecurity.Server.Data;

namespace CrmSecurity.Server.Hosting;

/// <summary>Wires the access-log analyzer into the host: its module on the host's database, and its verbs.</summary>
internal static class AuditAnalyzerHosting
{
    public static IHostApplicationBuilder AddAuditAnalyzerModule(this IHostApplicationBuilder builder)
    {
        builder.AddAuditAnalyzer(DatabaseSetup.Configure);
        builder.Services.AddSingleton(new ModuleSchema(AuditAnalyzerModule.SchemaName, AuditAnalyzerModule.SchemaContext, AuditAnalyzerModule.SchemaVersion));
        return builder;
    }

    /// <summary>Live ingestion and background scoring, with callers' tokens checked against the in-process Identity provider.</summary>
    public static WebApplicationBuilder AddAuditAnalyzerLiveModule(this WebApplicationBuilder builder)
    {
        builder.AddAuditAnalyzerLive(DatabaseSetup.Configure);
        builder.Services.AddSingleton(new ModuleSchema(LiveModule.SchemaName, LiveModule.SchemaContext, LiveModule.SchemaVersion));
        builder.Services.AddAuthentication().AddIdentityBearer(LiveModule.BearerScheme, LiveModule.Audience);
        return builder;
    }

    /// <summary>Findings export for SIEMs (ECS JSON Lines feed, CEF over syslog, signed webhooks) on the host's database; needs the live module.</summary>
    public static WebApplicationBuilder AddAuditAnalyzerExportModule(this WebApplicationBuilder builder)
    {
        builder.AddAuditAnalyzerExport(DatabaseSetup.Configure);
        builder.Services.AddSingleton(new ModuleSchema(ExportModule.SchemaName, ExportModule.SchemaContext, ExportModule.SchemaVersion));
        return builder;
    }

    /// <summary>analyze, generate and evaluate, run through <see cref="CliHost"/>; <c>--database PATH</c> points the run at a SQLite file.</summary>
    public static IEnumerable<System.CommandLine.Command> Commands() => AuditAnalyzerCommands.Create(new AnalyzerCliHost
    {
        CreateBuilder = sqlitePath =>
        {
            var builder = CliHost.CreateBuilder();
            if (sqlitePath is not null)
            {
                builder.Configuration[$"{DatabaseOptions.Section}:{nameof(DatabaseOptions.Provider)}"] = nameof(DatabaseProvider.Sqlite);
                builder.Configuration[$"{DatabaseOptions.Section}:{nameof(DatabaseOptions.ConnectionString)}"] = $"Data Source={sqlitePath}";
            }

            return builder;
        },
        AddAnalyzer = builder => builder.AddAuditAnalyzerModule(),
        Run = CliHost.RunAsync,
    });
}
