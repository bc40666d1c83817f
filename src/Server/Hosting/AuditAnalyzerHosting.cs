using CrmSecurity.AuditAnalyzer;
using CrmSecurity.AuditAnalyzer.Cli;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.Identity.Events;
using CrmSecurity.Server.AuditReview;
using CrmSecurity.Server.Data;
using CrmSecurity.Server.Demo;
using CrmSecurity.Server.Events;

namespace CrmSecurity.Server.Hosting;

/// <summary>Wires the access-log analyzer into the host: its module on the host's database, and its verbs.</summary>
internal static class AuditAnalyzerHosting
{
    /// <summary>
    /// The analyzer on the host's database; with <paramref name="service"/> also live ingestion, background scoring,
    /// review and the SIEM export, with callers' tokens checked against the in-process Identity provider (or
    /// <c>Identity:Authority</c>). Without <see cref="AddReviewThroughIdentity"/> nobody may review.
    /// </summary>
    public static IHostApplicationBuilder AddAuditAnalyzerModule(this IHostApplicationBuilder builder, bool service)
    {
        var configuration = builder.Configuration;
        return builder.AddAuditAnalyzer(analyzer =>
        {
            analyzer.Database = DatabaseSetup.Configure;
            analyzer.Tables = ModuleSchema.Registrar(builder.Services);
            analyzer.Service = service;
            analyzer.Bearer = (authentication, scheme, audience) => authentication.AddHostBearer(configuration, scheme, audience);
        });
    }

    /// <summary>
    /// Identity's access events go to the analyzer's live event table in-process (client id <c>identity</c>), so
    /// sign-ins, failed sign-ins, tokens and admin changes are scored like a CRM app's events. Needs both modules.
    /// </summary>
    public static IHostApplicationBuilder AddIdentityEventsToAnalyzer(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<IdentityEventsOptions>().Bind(builder.Configuration.GetSection(IdentityEventsOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<AnalyzerEventSink>();
        builder.Services.AddSingleton<IAccessEventSink>(provider => provider.GetRequiredService<AnalyzerEventSink>());
        builder.Services.AddHostedService(provider => provider.GetRequiredService<AnalyzerEventSink>());
        return builder;
    }

    /// <summary>Review rights come from Identity's authorization model and review actions go to its hash-chained audit trail.</summary>
    public static IHostApplicationBuilder AddReviewThroughIdentity(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ReviewIdentityBridge>();
        builder.Services.AddSingleton<IReviewAccess>(services => services.GetRequiredService<ReviewIdentityBridge>());
        builder.Services.AddSingleton<IReviewAuditTrail>(services => services.GetRequiredService<ReviewIdentityBridge>());
        return builder;
    }

    /// <summary>Live scoring takes its directory (peers, time zones, managers) from Identity's authorization model.</summary>
    public static IHostApplicationBuilder AddIdentityDirectoryToAnalyzer(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<IDirectorySource, IdentityDirectorySource>();
        return builder;
    }

    /// <summary>Decisions consult the live analyzer's open findings (risk that changes access, policies/risk-access.json).</summary>
    public static IHostApplicationBuilder AddAnalyzerRiskToDecisions(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<Identity.Contracts.IUserRisks, AnalyzerUserRisks>();
        return builder;
    }

    /// <summary>Demo mode on an empty database also seeds four weeks of access history for the analyzer (after Identity's demo data).</summary>
    public static IHostApplicationBuilder AddDemoHistory(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<DemoHistoryOptions>().Bind(builder.Configuration.GetSection(DemoHistoryOptions.Section)).ValidateOnStart();
        builder.Services.AddHostedService<DemoHistory>();
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
        AddAnalyzer = builder => builder.AddAuditAnalyzerModule(service: false),
        Run = CliHost.RunAsync,
    });
}
