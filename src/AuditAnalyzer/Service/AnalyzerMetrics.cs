using System.Diagnostics.Metrics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>The analyzer's meter (OpenTelemetry names; the host exports them).</summary>
public static class AnalyzerMetrics
{
    /// <summary>Name of the analyzer's <see cref="Meter"/>.</summary>
    public const string MeterName = "CrmSecurity.AuditAnalyzer";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> EventsIngested = Meter.CreateCounter<long>(
        "crm_security.analyzer.events_ingested", "{event}", "Access events received, by sending client and result (accepted, duplicate, rejected)");

    private static volatile IReadOnlyList<(string Detector, string Severity, long Count)> _findings = [];

    // Stored findings by detector and severity, as last read from the database: an open finding's severity can rise
    // as it grows, so this is an up-down counter of what is stored (all instances), not a count of this instance's work.
    private static readonly ObservableUpDownCounter<long> Findings = Meter.CreateObservableUpDownCounter(
        "crm_security.analyzer.findings", Observe, "{finding}", "Findings stored, by detector and severity");

    internal static void Ingested(string client, long count, string result)
    {
        if (count > 0)
        {
            EventsIngested.Add(count, new KeyValuePair<string, object?>("client", client), new KeyValuePair<string, object?>("result", result));
        }
    }

    private static double _scoringLag;

    // Seconds the oldest unscored event had waited at the last measurement (ScoringLag), seen from the database: all instances.
    private static readonly ObservableGauge<double> ScoringLagGauge = Meter.CreateObservableGauge(
        "crm_security.analyzer.scoring_lag", () => Volatile.Read(ref _scoringLag), "s",
        "How long the oldest unscored event has waited since it was received (all instances); 0 when none waits");

    internal static void SetScoringLag(double seconds) => Volatile.Write(ref _scoringLag, seconds);

    internal static void SetFindings(IReadOnlyList<(string Detector, string Severity, long Count)> findings) => _findings = findings;

    private static IEnumerable<Measurement<long>> Observe() =>
        _findings.Select(f => new Measurement<long>(f.Count, new KeyValuePair<string, object?>("detector", f.Detector), new KeyValuePair<string, object?>("severity", f.Severity)));
}

/// <summary>Reads the stored findings' counts for <see cref="AnalyzerMetrics"/> once per poll interval (one GROUP BY).</summary>
internal sealed partial class FindingsMetricsRefresher(IServiceScopeFactory scopes, IOptions<LiveOptions> options, TimeProvider time, ILogger<FindingsMetricsRefresher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PollInterval * 5, time);
        do
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
                var counts = await db.Findings.AsNoTracking().GroupBy(f => new { f.Detector, f.Severity })
                    .Select(g => new { g.Key.Detector, g.Key.Severity, Count = g.LongCount() }).ToListAsync(stoppingToken);
                AnalyzerMetrics.SetFindings([.. counts.Select(c => (c.Detector, c.Severity, c.Count))]);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogRefreshFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(EventId = 6104, Level = LogLevel.Warning, Message = "Could not read the findings counts for the metrics; the last counts stay")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);
}

/// <summary>
/// Readiness of live scoring, seen from the database: unscored events waiting longer than two lease durations while no
/// partition lease is live means no scorer is polling (on any instance). An instance with scoring off checks nothing.
/// </summary>
internal sealed class ScorerHealthCheck(IServiceScopeFactory scopes, IOptions<LiveOptions> options, TimeProvider time) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var settings = options.Value;
        if (!settings.Scoring)
        {
            return HealthCheckResult.Healthy("scoring is off on this instance");
        }

        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        var now = time.GetUtcNow().UtcTicks;
        var waitingSince = now - (settings.LeaseDuration * 2).Ticks;
        // When the oldest unscored event was received (the log answers with one index probe per partition).
        var stale = await scope.ServiceProvider.GetRequiredService<EventLog.IEventLog>().OldestPendingAsync(settings.Partitions, cancellationToken) < waitingSince;

        if (!stale || await db.Leases.AsNoTracking().AnyAsync(l => l.ExpiresTicks > now, cancellationToken))
        {
            return HealthCheckResult.Healthy();
        }

        return HealthCheckResult.Unhealthy($"events have waited more than {settings.LeaseDuration * 2} to be scored and no scorer holds a lease");
    }
}
