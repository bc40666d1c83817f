using CrmSecurity.AuditAnalyzer.Export;
using CrmSecurity.AuditAnalyzer.Persistence;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Shared;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer;

/// <summary>Settings of the analyzer, bound from the <c>AuditAnalyzer</c> section.</summary>
public sealed class AuditAnalyzerOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "AuditAnalyzer";

    /// <summary>Path of a scoring policy file; empty for the built-in policies/audit-analyzer.json.</summary>
    public string? Policy { get; set; }
}

/// <summary>What the host gives the analyzer: its database, its token check and where its tables are registered.</summary>
public sealed class AuditAnalyzerModuleOptions
{
    /// <summary>How the module's contexts reach the host's database (the host's provider choice). Required.</summary>
    public Action<IServiceProvider, DbContextOptionsBuilder>? Database { get; set; }

    /// <summary>
    /// The live service: ingestion, background scoring, review and the SIEM export over HTTP. Off for a verb that analyzes
    /// a file, which needs only the policy and the baselines.
    /// </summary>
    public bool Service { get; set; }

    /// <summary>
    /// Registers the bearer scheme (name, audience) the analyzer's API checks tokens with, against the host's token
    /// issuer. Required with <see cref="Service"/>.
    /// </summary>
    public Action<AuthenticationBuilder, string, string>? Bearer { get; set; }

    /// <summary>
    /// Called once for each set of tables the module keeps (name in <c>crm_schema_modules</c>, its DbContext, its schema
    /// version), so that the host creates and checks them at start like every module's.
    /// </summary>
    public Action<string, Type, int>? Tables { get; set; }
}

/// <summary>The access-log analyzer module: one <see cref="AddAuditAnalyzer"/> and one <see cref="MapAuditAnalyzer"/>.</summary>
public static class AuditAnalyzerModule
{
    /// <summary>Module name in <c>crm_schema_modules</c>.</summary>
    internal const string SchemaName = "audit-analyzer";

    /// <summary>
    /// Adds the analyzer: its options (policy validated at start), the baselines on the host's database, and with
    /// <see cref="AuditAnalyzerModuleOptions.Service"/> the live ingestion, scoring, review and export.
    /// </summary>
    public static IHostApplicationBuilder AddAuditAnalyzer(this IHostApplicationBuilder builder, Action<AuditAnalyzerModuleOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new AuditAnalyzerModuleOptions();
        configure(options);
        var database = options.Database ?? throw new InvalidOperationException($"{nameof(AuditAnalyzerModuleOptions)}.{nameof(AuditAnalyzerModuleOptions.Database)} is required.");
        var tables = options.Tables ?? ((_, _, _) => { });

        builder.Services.AddOptions<AuditAnalyzerOptions>()
            .Bind(builder.Configuration.GetSection(AuditAnalyzerOptions.Section))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<AuditAnalyzerOptions>, PolicyValidator>();
        builder.Services.AddSingleton(services => PolicyValidator.Load(services.GetRequiredService<IOptions<AuditAnalyzerOptions>>().Value));
        builder.Services.AddDbContext<AnalyzerDbContext>(database);
        tables(SchemaName, typeof(AnalyzerDbContext), AnalyzerDbContext.SchemaVersion);
        if (!options.Service)
        {
            return builder;
        }

        var bearer = options.Bearer ?? throw new InvalidOperationException($"{nameof(AuditAnalyzerModuleOptions)}.{nameof(AuditAnalyzerModuleOptions.Bearer)} is required for the service.");
        LiveModule.Add(builder, database);
        tables(LiveModule.SchemaName, typeof(LiveDbContext), LiveDbContext.SchemaVersion);
        bearer(builder.Services.AddAuthentication(), LiveModule.BearerScheme, LiveModule.Audience);
        ExportModule.Add(builder, database);
        tables(ExportModule.SchemaName, typeof(ExportDbContext), ExportDbContext.SchemaVersion);
        builder.Services.AddSingleton<ServiceMarker>();
        return builder;
    }

    /// <summary>
    /// Maps the service's endpoints when <see cref="AddAuditAnalyzer"/> added it: <c>POST /analyzer/events</c>
    /// (scope events:write), <c>GET /analyzer/findings</c> and the review API under <c>/analyzer/review</c> (scope
    /// findings:read and the caller's review rights), and the SIEM feed under <c>/analyzer/export</c>.
    /// </summary>
    public static IEndpointRouteBuilder MapAuditAnalyzer(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.ServiceProvider.GetService<ServiceMarker>() is not null)
        {
            LiveEndpoints.Map(endpoints);
            ExportEndpoints.Map(endpoints);
        }

        return endpoints;
    }

    private sealed class ServiceMarker;
}

/// <summary>Loads the policy at start so a bad file stops the host (exit 78) with file, line and setting named.</summary>
internal sealed class PolicyValidator : IValidateOptions<AuditAnalyzerOptions>
{
    public static ScoringPolicy Load(AuditAnalyzerOptions options) =>
        string.IsNullOrWhiteSpace(options.Policy)
            ? ScoringPolicy.Default()
            : PolicyReader.Load(Path.GetFullPath(options.Policy, Environment.CurrentDirectory));

    public ValidateOptionsResult Validate(string? name, AuditAnalyzerOptions options)
    {
        try
        {
            Load(options);
            return ValidateOptionsResult.Success;
        }
        catch (PolicyException e)
        {
            return ValidateOptionsResult.Fail(e.Problems.Select(p => $"AuditAnalyzer:Policy: {p}"));
        }
    }
}
