using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Identity;
using CrmSecurity.Crypto.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace CrmSecurity.Server.Hosting;

/// <summary>
/// OpenTelemetry metrics: one meter per module (Identity, Crypto, AuditAnalyzer) and ASP.NET Core's HTTP server
/// metrics. Exported over OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the standard OTEL_* variables
/// configure protocol, headers and interval); without it the meters still run for in-process listeners
/// (dotnet-counters, tests). Traces only with an OTLP endpoint (spans nobody receives are not made): ASP.NET Core's
/// server spans, HttpClient's (<c>System.Net.Http</c>: webhooks, federation, back-channel logout) and Npgsql's
/// (<c>Npgsql</c>: each PostgreSQL command), all from the runtime's and drivers' own activity sources.
/// </summary>
internal static class ServerTelemetry
{
    public const string OtlpEndpointSetting = "OTEL_EXPORTER_OTLP_ENDPOINT";

    public static IHostApplicationBuilder AddServerTelemetry(this IHostApplicationBuilder builder)
    {
        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointSetting]);
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("crm-security"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(IdentityModule.MeterName, CryptoServiceCollectionExtensions.MeterName, AnalyzerMetrics.MeterName)
                    .AddAspNetCoreInstrumentation();
                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            });
        if (otlp)
        {
            builder.Services.AddOpenTelemetry().WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation()
                .AddSource("System.Net.Http", "Npgsql")
                .AddOtlpExporter());
        }

        return builder;
    }
}
