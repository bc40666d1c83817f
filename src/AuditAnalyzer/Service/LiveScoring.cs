using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Scoring;
using CrmSecurity.AuditAnalyzer.Service.EventLog;
using CrmSecurity.AuditAnalyzer.Service.Snapshots;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>
/// Background scoring of the stored events, partition by partition (<c>AuditAnalyzer:Live:Runtime</c> = <c>leases</c>).
/// Each poll renews or takes the leases this instance can get and lets <see cref="PartitionScoring"/> score each held
/// partition. The Orleans runtime (<c>Orleans/</c>) runs the same <see cref="PartitionScoring"/> inside a grain per partition.
/// </summary>
internal sealed partial class LiveScoring(
    IServiceScopeFactory scopes,
    IOptions<LiveOptions> options,
    PartitionScoring partitions,
    TimeProvider time,
    ILogger<LiveScoring> logger) : BackgroundService
{
    private readonly Dictionary<int, PartitionState> _held = [];
    private readonly LiveOptions _options = options.Value;

    public string Owner { get; } = PartitionScoring.OwnerOf(options.Value);

    /// <summary>Partitions this instance scored in its last poll (for tests and health).</summary>
    public IReadOnlyCollection<int> Held { get; private set; } = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Scoring || !_options.UsesLeases)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PollAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A failed poll leaves the database consistent (one transaction per partition); state is rebuilt.
                _held.Clear();
                LogPollFailed(logger, e);
            }

            try
            {
                await Task.Delay(_options.PollInterval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (_held.Count == 0)
        {
            return;
        }

        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
            foreach (var partition in _held.Keys)
            {
                await PartitionLeases.ReleaseAsync(db, partition, Owner, cancellationToken);
            }
        }
        catch (ObjectDisposedException)
        {
            // The host's services are already torn down (a host disposed without a graceful stop): the leases expire.
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogPollFailed(logger, e); // the leases then simply expire
        }
    }

    /// <summary>One round over all partitions.</summary>
    internal async Task PollAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        var log = scope.ServiceProvider.GetRequiredService<IEventLog>();
        foreach (var partition in (await PartitionScoring.WorthScoringAsync(log, db, time, _options.Partitions, cancellationToken)).Union(_held.Keys).Where(p => p < _options.Partitions).Order().ToList())
        {
            PartitionState? state;
            try
            {
                state = await partitions.StepAsync(db, log, partition, Owner, _held.GetValueOrDefault(partition), cancellationToken);
            }
            catch
            {
                // The in-memory state may be ahead of the database now: drop it, the next poll rebuilds it.
                _held.Remove(partition);
                throw;
            }

            if (state is null)
            {
                _held.Remove(partition);
            }
            else
            {
                _held[partition] = state;
            }
        }

        Held = [.. _held.Keys];
    }

    [LoggerMessage(EventId = 6102, Level = LogLevel.Error, Message = "A background scoring poll failed; it is retried")]
    private static partial void LogPollFailed(ILogger logger, Exception exception);
}

/// <summary>
/// Scoring one partition, shared by both runtimes (the lease poller <see cref="LiveScoring"/> and the Orleans grain per
/// partition): take or renew the partition's lease, rebuild its scorer by replaying its scored events when it is new
/// to the caller, score its unscored events in arrival order, and save findings and progress in one transaction that
/// first checks the lease is still held. The lease is the write fence on both runtimes, so a finding is neither lost
/// nor doubled when an instance (or a silo) dies and another takes over.
/// </summary>
internal sealed partial class PartitionScoring(
    IOptions<LiveOptions> options,
    ScoringPolicy policy,
    LiveDirectory directory,
    TimeProvider time,
    FindingStore store,
    OrganisationHistory history,
    ILogger<PartitionScoring> logger)
{
    private const int PageSize = 2000;
    private const int MaxPagesPerStep = 5;
    private readonly LiveOptions _options = options.Value;
    private long _peopleRebound;

    /// <summary>People whose changed directory data a partition's scorer took on without a replay (since start).</summary>
    public long PeopleRebound => Interlocked.Read(ref _peopleRebound);

    /// <summary>The partitions' scorer snapshots: restored on a rebuild, written with the scoring transaction.</summary>
    public PartitionSnapshots Snapshots { get; } = new(options.Value, time, logger);

    /// <summary>The name an instance writes into the lease table: its configured id, or host name, process id and a random suffix.</summary>
    public static string OwnerOf(LiveOptions options) => string.IsNullOrWhiteSpace(options.InstanceId)
        ? $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..8]}"
        : options.InstanceId;

    /// <summary>
    /// Partitions worth a step: those with events the log has not seen acknowledged (<see cref="IEventLog.PendingPartitionsAsync"/>)
    /// and those left by a dead owner (an expired lease, whose open findings close by the clock). An idle installation costs
    /// two small queries.
    /// </summary>
    public static async Task<List<int>> WorthScoringAsync(IEventLog log, LiveDbContext db, TimeProvider time, int partitions, CancellationToken cancellationToken)
    {
        var nowTicks = time.GetUtcNow().UtcTicks;
        var pending = await log.PendingPartitionsAsync(partitions, cancellationToken);
        var orphaned = await db.Leases.AsNoTracking().Where(l => l.ExpiresTicks < nowTicks).Select(l => l.Partition).ToListAsync(cancellationToken);
        return [.. pending.Union(orphaned)];
    }

    /// <summary>
    /// One step for one partition under <paramref name="owner"/>'s lease: the state to keep for the next step, or null
    /// when the partition is not (or no longer) the owner's. An exception leaves the database consistent, but the
    /// caller must drop <paramref name="state"/> (it may be ahead of the database).
    /// </summary>
    public async Task<PartitionState?> StepAsync(LiveDbContext db, IEventLog log, int partition, string owner, PartitionState? state, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();

        // A held lease is renewed once half of it has run, not on every step: an idle partition costs one SELECT per
        // step. Writes are fenced by a renewal in their own transaction either way.
        if (state is null || state.LeaseUntil - now < _options.LeaseDuration / 2)
        {
            var outcome = await PartitionLeases.TryAcquireAsync(db, partition, owner, now, _options.LeaseDuration, cancellationToken);
            if (outcome == LeaseOutcome.Refused)
            {
                return null;
            }

            if (outcome == LeaseOutcome.Acquired || state is null)
            {
                LogAcquired(logger, partition, owner);
                state = await RebuildAsync(db, log, partition, cancellationToken);
            }

            state.LeaseUntil = now + _options.LeaseDuration;
        }

        // Someone's directory data changed (a time zone, a business unit, roles, a termination date): the people it
        // changed are judged by their new data from now on, without a replay (Scorer.Rebind says what moves and what stays).
        if (directory.Current is var current && !ReferenceEquals(state.Directory, current))
        {
            var changed = state.Scorer.Rebind(current);
            Interlocked.Add(ref _peopleRebound, changed);
            LogDirectoryChanged(logger, partition, changed);
        }

        // A backlog is worked off page after page (each page its own fenced transaction) within one step, up to
        // MaxPagesPerStep: the poll's pause then comes once per round over the partitions, not once per page.
        for (var pages = 1; ; pages++)
        {
            var before = state.EventsScored;
            if (!await ScoreNewAsync(db, log, partition, owner, state, cancellationToken))
            {
                LogLost(logger, partition, owner);
                return null;
            }

            if (state.EventsScored - before < PageSize || pages == MaxPagesPerStep)
            {
                return state;
            }
        }
    }

    private PartitionState NewState()
    {
        var report = new IngestionReport();
        var parser = new JsonLinesEventParser(new EventFields("stored", report, new StringPool()));
        var users = directory.Current;
        var scorer = new ScoringOptions { Policy = policy, Directory = users, TimeProvider = time }.Build();
        return new PartitionState(scorer, parser);
    }

    /// <summary>
    /// Rebuilds the partition's scorer as its last owner left it: from its snapshot when there is a usable one, replaying
    /// only the events scored after it (and those below it that were still unscored when it was written); otherwise by
    /// replaying every scored event of the partition.
    /// </summary>
    private async Task<PartitionState> RebuildAsync(LiveDbContext db, IEventLog log, int partition, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var state = NewState();
        // Every partition counts the organisation's learning period from the installation's first day, not its own first event.
        var firstDay = history.KnownFirstDay ?? await OrganisationHistory.FirstArrivalDayAsync(db, log, cancellationToken);
        var coverage = await Snapshots.TryRestoreAsync(db, partition, state, cancellationToken);
        if (coverage is null)
        {
            state = NewState(); // a snapshot read only in part leaves nothing behind
            state.Scorer.Baselines.OrganisationFirstDay = firstDay;
        }
        else if (firstDay is { } first && (state.Scorer.Baselines.OrganisationFirstDay is not { } kept || first < kept))
        {
            state.Scorer.Baselines.OrganisationFirstDay = first;
        }

        var discarded = new List<Finding>();
        long replayed = 0;
        if (coverage is { Gaps.Count: > 0 })
        {
            var late = await log.ReplayAsync(partition, coverage.Gaps.ToList(), cancellationToken);
            ScorePage(state, late, discarded);
            replayed += late.Count;
            discarded.Clear();
        }

        var after = coverage?.CoveredSeq ?? 0;
        while (true)
        {
            var page = await log.ReplayAsync(partition, after, PageSize, cancellationToken);
            if (page.Count == 0)
            {
                Snapshots.CountReplayed(partition, replayed, coverage is not null, clock.Elapsed);
                return state;
            }

            ScorePage(state, page, discarded);
            discarded.Clear(); // already saved when the events were first scored
            replayed += page.Count;
            after = page[^1].Seq;
        }
    }

    /// <summary>Scores the partition's unscored events and saves the result; false when the lease was lost.</summary>
    private async Task<bool> ScoreNewAsync(LiveDbContext db, IEventLog log, int partition, string owner, PartitionState state, CancellationToken cancellationToken)
    {
        var page = await log.ReadPendingAsync(partition, PageSize, cancellationToken);
        var findings = new List<Finding>();
        ScorePage(state, page, findings);
        history.Saw(state.Scorer.Baselines.OrganisationFirstDay);

        // Findings whose correlation window has passed by the clock close now, not when the next event comes.
        var now = time.GetUtcNow();
        state.Scorer.AdvanceTo(now.UtcTicks, findings);
        if (page.Count == 0 && findings.Count == 0)
        {
            return true;
        }

        state.Scorer.OpenFindings(findings);
        await store.PrepareAsync(db, cancellationToken);
        var strategy = db.Database.CreateExecutionStrategy();
        Func<CancellationToken, Task>? afterCommit = null;
        var saved = await strategy.ExecuteAsync(async () =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);

            // Fencing: the lease row is locked by this UPDATE until commit, so nobody takes the partition over
            // while these findings are written, and an instance (or a grain activation) that lost it writes nothing.
            if (!await PartitionLeases.RenewAsync(db, partition, owner, now, _options.LeaseDuration, cancellationToken))
            {
                await transaction.RollbackAsync(cancellationToken);
                return false;
            }

            await store.SaveAsync(db, findings, now, cancellationToken);
            // The page is acknowledged in this transaction (the database log) or once it has committed (a log outside the
            // database, which re-delivers what a crash in between left unacknowledged: IEventLog.AcknowledgeAsync says why that is safe).
            afterCommit = await log.AcknowledgeAsync(db, partition, page, cancellationToken);

            await Snapshots.SaveIfDueAsync(db, log, partition, state, page, now, cancellationToken);

            await transaction.CommitAsync(cancellationToken);
            state.LeaseUntil = now + _options.LeaseDuration;
            state.EventsScored += page.Count;
            return true;
        });
        if (saved && afterCommit is not null)
        {
            await afterCommit(cancellationToken);
        }

        return saved;
    }

    private static void ScorePage(PartitionState state, List<StoredEventRow> page, List<Finding> findings)
    {
        var events = new List<AccessEvent>(page.Count);
        foreach (var row in page)
        {
            if (EventBatches.ToEvent(row, state.Parser) is { } e)
            {
                events.Add(e);
            }
        }

        // A batch may hold events of several senders interleaved: score in time order (stable for equal times).
        foreach (var e in events.OrderBy(e => e.UtcTicks))
        {
            state.Scorer.Score(e, findings);
        }
    }

    [LoggerMessage(EventId = 6100, Level = LogLevel.Information, Message = "Scoring partition {Partition} as {Owner}")]
    private static partial void LogAcquired(ILogger logger, int partition, string owner);

    [LoggerMessage(EventId = 6101, Level = LogLevel.Warning, Message = "Lost the lease of partition {Partition} ({Owner}); its unsaved work is discarded")]
    private static partial void LogLost(ILogger logger, int partition, string owner);

    [LoggerMessage(EventId = 6103, Level = LogLevel.Information, Message = "The directory changed: partition {Partition} judges {People} changed people by their new data")]
    private static partial void LogDirectoryChanged(ILogger logger, int partition, int people);
}

/// <summary>One partition's scorer as its current owner holds it.</summary>
internal sealed class PartitionState(Scorer scorer, JsonLinesEventParser parser)
{
    public Scorer Scorer { get; } = scorer;

    /// <summary>The directory the scorer judges by.</summary>
    public UserDirectory Directory => Scorer.Directory;

    public JsonLinesEventParser Parser { get; } = parser;

    /// <summary>Until when the owner's lease runs, as of its last renewal.</summary>
    public DateTimeOffset LeaseUntil { get; set; }

    /// <summary>Events this state scored and saved (not those it replayed).</summary>
    public long EventsScored { get; set; }

    /// <summary>The scorer's event count when its last snapshot was written or read (see <see cref="PartitionSnapshots"/>).</summary>
    public long SnapshotEvents { get; set; }

    /// <summary>When its last snapshot was written or read; never: the first scoring transaction writes one.</summary>
    public DateTimeOffset SnapshotTime { get; set; } = DateTimeOffset.MinValue;
}
