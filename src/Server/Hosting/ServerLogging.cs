using System.Globalization;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace CrmSecurity.Server.Hosting;

internal static class ServerLogging
{
    /// <summary>
    /// Serilog for the host: levels from the <c>Serilog</c> section, console as text in Development and as
    /// compact JSON (one event per line, stable property names) elsewhere, chosen by <c>Logging:Console:Format</c>.
    /// </summary>
    /// <param name="builder">The host builder.</param>
    /// <param name="toStandardError">For verbs: all log events go to stderr so stdout carries only the verb's output.</param>
    public static IHostApplicationBuilder AddServerLogging(this IHostApplicationBuilder builder, bool toStandardError = false)
    {
        LogEventLevel? standardErrorFrom = toStandardError ? LogEventLevel.Verbose : null;
        var format = builder.Configuration["Logging:Console:Format"];
        builder.Services.AddSerilog((services, logger) =>
        {
            logger.ReadFrom.Configuration(builder.Configuration)
                .ReadFrom.Services(services)
                .Enrich.FromLogContext()
                .Enrich.With<TokenRedaction>()
                // The generic host logs a failed start with the full stack trace; configuration errors are
                // reported by ServerHost as one clear line naming the setting instead.
                .Filter.ByExcluding(e => e.Exception is not null && ConfigurationErrors.Describe(e.Exception) is not null);
            if (string.Equals(format, "Text", StringComparison.OrdinalIgnoreCase))
            {
                logger.WriteTo.Console(
                    outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}",
                    formatProvider: CultureInfo.InvariantCulture,
                    standardErrorFromLevel: standardErrorFrom);
            }
            else
            {
                logger.WriteTo.Console(new RenderedCompactJsonFormatter(), standardErrorFromLevel: standardErrorFrom);
            }
        });
        return builder;
    }
}
