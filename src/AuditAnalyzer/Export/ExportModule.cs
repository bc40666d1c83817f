using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>
/// Findings export for SIEMs: an incremental JSON Lines feed in ECS field names (<c>GET /analyzer/export/findings</c>),
/// and a background forwarder pushing each finding change as CEF over syslog and to signed webhooks.
/// Reads the live module's findings; the live module must be added too.
/// </summary>
internal static class ExportModule
{
    /// <summary>Module name of the export tables in <c>crm_schema_modules</c>.</summary>
    internal const string SchemaName = "audit-analyzer-export";

    /// <summary>Adds the export's options (validated at start) and its tables on the host's database.</summary>
    internal static IHostApplicationBuilder Add(IHostApplicationBuilder builder, Action<IServiceProvider, DbContextOptionsBuilder> database)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddOptions<ExportOptions>().Bind(builder.Configuration.GetSection(ExportOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ExportOptions>, ExportOptionsValidator>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddScoped<IFindingReviewStates, LiveReviewStates>();
        services.AddDbContext<ExportDbContext>(database);

        // Destinations come from the validated options; the forwarder idles when there is none.
        services.AddSingleton<IReadOnlyList<IFindingDestination>>(provider =>
        {
            var settings = provider.GetRequiredService<IOptions<ExportOptions>>().Value;
            var destinations = new List<IFindingDestination>();
            if (settings.Syslog.Enabled)
            {
                destinations.Add(ActivatorUtilities.CreateInstance<SyslogDestination>(provider));
            }

            foreach (var webhook in settings.Webhooks)
            {
                destinations.Add(ActivatorUtilities.CreateInstance<WebhookDestination>(provider, webhook));
            }

            return destinations;
        });

        // Redirects are not followed (a 3xx could lead a signed finding to another host or to http); the client's
        // own request logging is removed because a receiver URL may carry a token in its query.
        services.AddHttpClient(WebhookDestination.ClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new System.Net.Http.SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false })
            .ConfigureHttpClient(client => client.Timeout = TimeSpan.FromSeconds(30))
            .RemoveAllLoggers();
        services.AddHostedService<ExportForwarder>();
        return builder;
    }

    /// <summary>Policy of the export endpoint: the live module's findings:read policy.</summary>
    internal const string ReadPolicy = LiveModule.ReadPolicy;
}
