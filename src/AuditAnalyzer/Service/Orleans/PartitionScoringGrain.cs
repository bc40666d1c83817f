using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;

namespace CrmSecurity.AuditAnalyzer.Service.Orleans;

/// <summary>A partition of the live events (its integer key), scored by the one activation Orleans keeps of it.</summary>
internal interface IPartitionScoringGrain : IGrainWithIntegerKey
{
    /// <summary>Scores the partition's unscored events now; the number of events scored and saved.</summary>
    Task<long> ScoreAsync();
}

/// <summary>
/// Owns one partition's <see cref="Scoring.Scorer"/>: on activation it takes the partition's lease and rebuilds the scorer
/// (a replay of the partition's scored events, as <see cref="LiveScoring"/> does on a takeover), then scores on each
/// call and on a timer (so open findings close by the clock). Orleans keeps one activation per partition, places them
/// at random across the silos, and reactivates them elsewhere when a silo dies. The lease stays the write fence:
/// single activation is not a fence while membership changes (a silo declared dead may still be running), so every
/// save is one transaction that first renews the lease under this activation's own owner name, and a second
/// activation anywhere writes nothing until the first one's lease is given back or has expired.
/// </summary>
[RandomPlacement]
internal sealed partial class PartitionScoringGrain(
    PartitionScoring scoring,
    IServiceScopeFactory scopes,
    OrleansScoringWork work,
    IOptions<LiveOptions> options,
    ILogger<PartitionScoringGrain> logger) : Grain, IPartitionScoringGrain
{
    // Per activation, so that two activations of one partition (during a membership change) never share a lease.
    private readonly string _owner = $"{work.Silo}#{Guid.NewGuid().ToString("N")[..8]}";
    private PartitionState? _state;

    private int Partition => (int)this.GetPrimaryKeyLong();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var interval = options.Value.PollInterval;
        this.RegisterGrainTimer(TickAsync, new GrainTimerCreationOptions(interval, interval) { KeepAlive = true, Interleave = false });
        await TickAsync(cancellationToken); // take the lease and rebuild now, not on the first call
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_state is null)
        {
            return;
        }

        // Moved or shut down gracefully: give the lease back so the next activation need not wait for it to expire.
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await PartitionLeases.ReleaseAsync(scope.ServiceProvider.GetRequiredService<LiveDbContext>(), Partition, _owner, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogStepFailed(logger, Partition, e); // the lease then simply expires
        }

        _state = null;
    }

    public Task<long> ScoreAsync() => StepAsync(CancellationToken.None);

    private async Task TickAsync(CancellationToken cancellationToken)
    {
        try
        {
            await StepAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogStepFailed(logger, Partition, e); // retried on the next tick or call, from a rebuilt state
        }
    }

    private async Task<long> StepAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        var before = _state?.EventsScored ?? 0;
        try
        {
            _state = await scoring.StepAsync(db, scope.ServiceProvider.GetRequiredService<EventLog.IEventLog>(), Partition, _owner, _state, cancellationToken);
        }
        catch
        {
            _state = null; // it may be ahead of the database: the next step rebuilds it
            throw;
        }

        var scored = _state is null ? 0 : _state.EventsScored - before;
        work.Scored(Partition, scored);
        return scored;
    }

    [LoggerMessage(EventId = 6170, Level = LogLevel.Error, Message = "Scoring partition {Partition} on this silo failed; it is retried")]
    private static partial void LogStepFailed(ILogger logger, int partition, Exception exception);
}
