using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service.Orleans;

/// <summary>
/// On every silo: each poll asks the grains of the partitions with unscored events (or with an expired lease) to score.
/// Orleans routes each call to that partition's one activation, wherever it is, and activates it (on a silo picked at
/// random) when it has none. A call still running (for example to a grain on a silo that just died, until the cluster
/// declares it dead) is not repeated, so one slow partition never holds up the others.
/// </summary>
internal sealed partial class OrleansScoringPoller(
    IGrainFactory grains,
    IServiceScopeFactory scopes,
    IOptions<LiveOptions> options,
    TimeProvider time,
    ILogger<OrleansScoringPoller> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<int, Task> _calls = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
                foreach (var partition in (await PartitionScoring.WorthScoringAsync(scope.ServiceProvider.GetRequiredService<EventLog.IEventLog>(), db, time, settings.Partitions, stoppingToken)).Where(p => p < settings.Partitions))
                {
                    if (!_calls.ContainsKey(partition))
                    {
                        _calls[partition] = CallAsync(partition);
                    }
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogPollFailed(logger, e);
            }

            try
            {
                await Task.Delay(settings.PollInterval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task CallAsync(int partition)
    {
        try
        {
            await Task.Yield();
            await grains.GetGrain<IPartitionScoringGrain>(partition).ScoreAsync();
        }
        catch (Exception e)
        {
            LogCallFailed(logger, partition, e); // asked again on the next poll
        }
        finally
        {
            _calls.TryRemove(partition, out _);
        }
    }

    [LoggerMessage(EventId = 6171, Level = LogLevel.Error, Message = "Looking for partitions to score failed; it is retried")]
    private static partial void LogPollFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6172, Level = LogLevel.Warning, Message = "Asking partition {Partition}'s grain to score failed; it is asked again")]
    private static partial void LogCallFailed(ILogger logger, int partition, Exception exception);
}
