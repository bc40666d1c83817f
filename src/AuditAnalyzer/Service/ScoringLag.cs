using System.Globalization;
using CrmSecurity.AuditAnalyzer.Service.EventLog;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>
/// How far live scoring is behind, seen from the event log (the database: so across every instance): how long the oldest unscored
/// event has waited since it was received. It is measured about once a second (<see cref="ScoringLagWatch"/>), published
/// as the gauge <c>crm_security.analyzer.scoring_lag</c> (seconds), and, with <see cref="LiveOptions.MaxScoringLag"/> set,
/// turns new batches away (503, <c>Retry-After</c>) while scoring is further behind than that: the sender keeps what the
/// scorer cannot take yet, and a finding never trails its evidence by much more than the limit.
/// </summary>
internal sealed class ScoringLag(IOptions<LiveOptions> options, TimeProvider time)
{
    private long _oldestTicks = long.MaxValue; // received time of the oldest unscored event; MaxValue: none
    private long _measuredTicks = long.MinValue;

    /// <summary>How long the oldest unscored event has waited, as of the last measurement; zero when none waits; null before the first one or when the last is stale.</summary>
    public TimeSpan? Lag
    {
        get
        {
            var now = time.GetUtcNow().UtcTicks;
            var measured = Interlocked.Read(ref _measuredTicks);
            // Older than five intervals (the database is unreachable, the watch stopped): unknown, never a reason to refuse.
            if (measured == long.MinValue || now - measured > (Interval(options.Value) * 5).Ticks)
            {
                return null;
            }

            var oldest = Interlocked.Read(ref _oldestTicks);
            return oldest == long.MaxValue ? TimeSpan.Zero : TimeSpan.FromTicks(Math.Max(0, now - oldest));
        }
    }

    /// <summary>The lag when it exceeds <see cref="LiveOptions.MaxScoringLag"/> (set and measured), so a new batch must wait; otherwise null.</summary>
    public TimeSpan? Refusing => options.Value.MaxScoringLag > TimeSpan.Zero && Lag is { } lag && lag > options.Value.MaxScoringLag ? lag : null;

    /// <summary>The detail of the 503 a batch gets while <see cref="Refusing"/>.</summary>
    public string Explain(TimeSpan lag, string retryAfterSeconds) => string.Create(CultureInfo.InvariantCulture,
        $"Scoring is {lag.TotalSeconds:0.0} s behind, more than AuditAnalyzer:Live:MaxScoringLag ({options.Value.MaxScoringLag.TotalSeconds:0} s): new batches wait until it catches up. Send this batch again after {retryAfterSeconds} s; events already stored are not stored twice.");

    internal static TimeSpan Interval(LiveOptions options) => options.PollInterval > TimeSpan.FromSeconds(1) ? options.PollInterval : TimeSpan.FromSeconds(1);

    internal void Measured(long? oldestReceivedTicks)
    {
        Interlocked.Exchange(ref _oldestTicks, oldestReceivedTicks ?? long.MaxValue);
        Interlocked.Exchange(ref _measuredTicks, time.GetUtcNow().UtcTicks);
        AnalyzerMetrics.SetScoringLag(Lag?.TotalSeconds ?? 0);
    }
}

/// <summary>Measures <see cref="ScoringLag"/> about once a second on every instance (ingest-only ones too: they refuse by it).</summary>
internal sealed partial class ScoringLagWatch(IServiceScopeFactory scopes, ScoringLag lag, IOptions<LiveOptions> options, TimeProvider time, ILogger<ScoringLagWatch> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(ScoringLag.Interval(options.Value), time);
        do
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var log = scope.ServiceProvider.GetRequiredService<IEventLog>();
                lag.Measured(await log.OldestPendingAsync(options.Value.Partitions, stoppingToken));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogMeasureFailed(logger, e.GetType().Name);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    // The exception's type only: a provider's message may carry connection details.
    [LoggerMessage(EventId = 6160, Level = LogLevel.Warning, Message = "Could not measure the scoring lag ({ExceptionType}); batches are not refused for it until it is measured again")]
    private static partial void LogMeasureFailed(ILogger logger, string exceptionType);
}
