using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.Shared;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>
/// Live ingestion (<c>POST /analyzer/events</c>) and background scoring into stored findings
/// (<c>GET /analyzer/findings</c>). Callers authenticate with bearer access tokens for <see cref="Audience"/>;
/// the host registers the <see cref="BearerScheme"/> JwtBearer scheme against its token issuer.
/// </summary>
public static class LiveModule
{
    /// <summary>Authentication scheme of the analyzer's API, registered by the host's bearer callback.</summary>
    internal const string BearerScheme = "AuditAnalyzerApi";

    /// <summary>The resource (token audience) of the analyzer's API.</summary>
    public const string Audience = "crm-security-analyzer";

    /// <summary>Scope that lets a CRM app send access events.</summary>
    public const string WriteScope = "events:write";

    /// <summary>Scope that lets an auditor's tool read findings.</summary>
    public const string ReadScope = "findings:read";

    /// <summary>Module name of the live tables in <c>crm_schema_modules</c>.</summary>
    internal const string SchemaName = "audit-analyzer-live";

    /// <summary>Tag of the health checks that decide readiness (the host's readiness endpoint runs those).</summary>
    public const string ReadyTag = "ready";

    internal const string WritePolicy = "audit-analyzer.events.write";
    internal const string ReadPolicy = "audit-analyzer.findings.read";
    internal const string ReviewPolicy = "audit-analyzer.review";

    /// <summary>Adds ingestion, the background scorer and their authorization policies (through <see cref="AuditAnalyzerModule.AddAuditAnalyzer"/>).</summary>
    internal static IHostApplicationBuilder Add(IHostApplicationBuilder builder, Action<IServiceProvider, DbContextOptionsBuilder> database)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddOptions<LiveOptions>().Bind(builder.Configuration.GetSection(LiveOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<LiveOptions>, LiveOptionsValidator>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddDbContext<LiveDbContext>(database);
        // The ingestion log (issue 17's seam): the events table, one per scope over that scope's context. A Kafka-backed
        // deployment registers its own IEventLog here instead (docs/live-analysis-scale.md, "The seam").
        services.TryAddScoped<EventLog.IEventLog, EventLog.DatabaseEventLog>();
        services.AddSingleton<FindingStore>();
        services.AddSingleton<PartitionScoring>();
        services.AddSingleton<LiveScoring>();
        services.AddSingleton<OrganisationHistory>();
        services.AddSingleton<ILiveEventWriter, LiveEventWriter>();
        services.AddSingleton<IngestionWrites.IngestionGate>();
        services.AddSingleton<LiveDirectory>();
        // Before the scorer and the review start: a clear pseudonym key of an older database is wrapped first.
        services.AddHostedService<PseudonymKeyUpgrade>();
        services.AddHostedService<FindingsMetricsRefresher>();
        services.AddSingleton<ScoringLag>();
        services.AddHostedService<ScoringLagWatch>();
        services.AddSingleton<LiveUserRisks>();
        services.AddHostedService<LiveUserRisksRefresher>();
        services.AddHealthChecks().AddCheck<ScorerHealthCheck>("analyzer-scorer", tags: [ReadyTag]);
        // AuditAnalyzer:Live:Runtime: partition leases polled by each instance (the default), or a grain per partition on
        // an in-process Orleans silo. A value that is neither stops start-up in LiveOptionsValidator (exit 78).
        var live = builder.Configuration.GetSection(LiveOptions.Section);
        if (string.Equals(live[nameof(LiveOptions.Runtime)], LiveOptions.OrleansRuntime, StringComparison.OrdinalIgnoreCase)
            && !string.Equals(live[nameof(LiveOptions.Scoring)], "false", StringComparison.OrdinalIgnoreCase))
        {
            Orleans.OrleansScoring.Add(builder);
        }
        else
        {
            services.AddHostedService(provider => provider.GetRequiredService<LiveScoring>());
        }

        Retention.RetentionSettings.AddEventRetention(services); // deletes scored events older than RetentionDays

        // Review: without a host bridge to an authorization model and audit trail, nobody may review (deny by default).
        services.AddOptions<ReviewOptions>().Bind(builder.Configuration.GetSection(ReviewOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ReviewOptions>, ReviewOptionsValidator>();
        services.AddSingleton<PseudonymKeys>();
        services.AddSingleton<PeerGroupSizes>();
        services.TryAddSingleton<IReviewAccess, NoReviewAccess>();
        services.TryAddSingleton<IReviewAuditTrail, NoReviewAccess>();
        services.AddScoped<ReviewActions>();

        // The review pages (/review); the host maps Razor Pages once for every module (MapRazorPages) and signs users in.
        services.AddRazorPages().AddApplicationPart(typeof(LiveModule).Assembly);

        // Deny by default: an authenticated caller needs the scope for the call (RFC 6749 §3.3, RFC 9068 §2.2.3).
        services.AddAuthorizationBuilder()
            .AddPolicy(WritePolicy, policy => policy.AddAuthenticationSchemes(BearerScheme).RequireAuthenticatedUser()
                .RequireAssertion(context => ScopeClaims.HasScope(context.User, WriteScope)))
            .AddPolicy(ReadPolicy, policy => policy.AddAuthenticationSchemes(BearerScheme).RequireAuthenticatedUser()
                .RequireAssertion(context => ScopeClaims.HasScope(context.User, ReadScope)))
            .AddPolicy(ReviewPolicy, policy => policy.AddAuthenticationSchemes(BearerScheme).RequireAuthenticatedUser()
                .RequireAssertion(context => ScopeClaims.HasScope(context.User, ReadScope)));
        return builder;
    }
}
