using CrmSecurity.AuditAnalyzer.Persistence;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.Shared;
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

/// <summary>The access-log analyzer module: baselines in the host's database, the scoring policy validated at start.</summary>
public static class AuditAnalyzerModule
{
    /// <summary>The module's DbContext, for the host's schema registration.</summary>
    public static Type SchemaContext => typeof(AnalyzerDbContext);

    /// <summary>Schema version of the module's tables.</summary>
    public const int SchemaVersion = AnalyzerDbContext.SchemaVersion;

    /// <summary>Module name in <c>crm_schema_modules</c>.</summary>
    public const string SchemaName = "audit-analyzer";

    /// <summary>Adds the analyzer: its options (policy validated at start), its DbContext on the host's database, and the policy.</summary>
    public static IHostApplicationBuilder AddAuditAnalyzer(this IHostApplicationBuilder builder, Action<IServiceProvider, DbContextOptionsBuilder> database)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<AuditAnalyzerOptions>()
            .Bind(builder.Configuration.GetSection(AuditAnalyzerOptions.Section))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<AuditAnalyzerOptions>, PolicyValidator>();
        builder.Services.AddSingleton(services => PolicyValidator.Load(services.GetRequiredService<IOptions<AuditAnalyzerOptions>>().Value));
        builder.Services.AddDbContext<AnalyzerDbContext>(database);
        return builder;
    }
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
