using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Review;
using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>What became of one finding change at a destination.</summary>
internal sealed record DeliveryResult(bool Delivered, int? Status = null, string? Failure = null)
{
    public static readonly DeliveryResult Ok = new(true);
}

/// <summary>A place the forwarder pushes finding changes to, in feed order, with its own cursor.</summary>
internal interface IFindingDestination
{
    /// <summary>Keys the destination's cursor: <c>syslog</c> or <c>webhook:NAME</c>.</summary>
    string Name { get; }

    Severity MinSeverity { get; }

    /// <summary>Whether it receives real identities (configured explicitly; each release audited) or pseudonyms.</summary>
    bool RealIdentities { get; }

    /// <summary>
    /// Delivers one change, retrying transient failures itself until delivered, refused for good, or
    /// <paramref name="cancellationToken"/> fires (then it throws and the change is tried again later).
    /// </summary>
    Task<DeliveryResult> DeliverAsync(ExportFinding finding, CancellationToken cancellationToken);
}

/// <summary>
/// Pushes each new or changed finding once per change to every destination, in (updated_ticks, id) order. One
/// instance forwards at a time (a lease row, like the scorer's partition leases); each destination's cursor moves on
/// in <see cref="ExportDbContext"/> after each change, so a restart resumes where it stopped. Delivery is
/// at-least-once: a crash between a send and its cursor write, or a lease lost mid-send, sends that change again.
/// </summary>
internal sealed partial class ExportForwarder(
    IServiceScopeFactory scopes,
    IOptions<ExportOptions> options,
    IReadOnlyList<IFindingDestination> destinations,
    TimeProvider time,
    ILogger<ExportForwarder> logger) : BackgroundService
{
    private const int PageSize = 200;
    private readonly ExportOptions _options = options.Value;

    public string Owner { get; } = string.IsNullOrWhiteSpace(options.Value.InstanceId)
        ? $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..8]}"
        : options.Value.InstanceId;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (destinations.Count == 0)
        {
            return;
        }

        foreach (var destination in destinations.Where(d => d.RealIdentities))
        {
            LogRealIdentities(logger, destination.Name);
        }

        CancellationTokenSource? workers = null;
        Task running = Task.CompletedTask;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    var held = await HoldLeaseAsync(stoppingToken);
                    if (held && workers is null)
                    {
                        LogAcquired(logger, Owner);
                        workers = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                        var token = workers.Token;
                        running = Task.WhenAll(destinations.Select(d => Task.Run(() => RunAsync(d, token), CancellationToken.None)));
                    }
                    else if (!held && workers is not null)
                    {
                        LogLost(logger, Owner);
                        await StopAsync(workers, running);
                        workers = null;
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Unsure whether the lease still holds: stop forwarding rather than risk two forwarders.
                    LogLeaseFailed(logger, e);
                    if (workers is not null)
                    {
                        await StopAsync(workers, running);
                        workers = null;
                    }
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
        finally
        {
            if (workers is not null)
            {
                await StopAsync(workers, running);
                await ReleaseLeaseAsync();
            }

            foreach (var destination in destinations.OfType<IAsyncDisposable>())
            {
                await destination.DisposeAsync();
            }
        }
    }

    /// <summary>Forwards one batch to a destination; the number of changes handled (0: nothing new).</summary>
    internal async Task<int> PumpAsync(IFindingDestination destination, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var live = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
        var export = scope.ServiceProvider.GetRequiredService<ExportDbContext>();
        var reviews = scope.ServiceProvider.GetRequiredService<IFindingReviewStates>();
        var actions = scope.ServiceProvider.GetRequiredService<ReviewActions>();
        var key = await actions.PseudonymKeyAsync(cancellationToken);
        var cursor = await export.Cursors.FirstOrDefaultAsync(c => c.Destination == destination.Name, cancellationToken);
        FeedCursor? after = cursor is null ? null : new FeedCursor(cursor.UpdatedTicks, cursor.FindingId);
        var batch = await FindingFeed.ReadAsync(live, reviews, after, PageSize, time.GetUtcNow() - _options.SettleTime, cancellationToken);
        var ids = batch.Select(f => f.Id).Distinct().ToList();
        var sent = await export.Sent.Where(x => x.Destination == destination.Name && ids.Contains(x.FindingId))
            .ToDictionaryAsync(x => x.FindingId, StringComparer.Ordinal, cancellationToken);
        foreach (var finding in batch)
        {
            sent.TryGetValue(finding.Id, out var last);
            // Pseudonymous unless the destination was configured for real identities; then the release is audited first.
            var shown = destination.RealIdentities ? finding : finding.Pseudonymous(key, actions.PeerGroups);
            if (finding.Finding.Severity >= destination.MinSeverity && last?.Fingerprint != shown.Fingerprint)
            {
                if (destination.RealIdentities)
                {
                    var pseudonym = string.IsNullOrEmpty(finding.Pseudonym) ? Pseudonyms.Of(key, finding.Finding.UserId) : finding.Pseudonym;
                    await actions.ReleaseIdentitiesAsync(ExportActor(destination), [(finding.Id, finding.Finding.UserId, finding.Finding.UserName, pseudonym, finding.Finding.Detector)],
                        destination.Name, $"{ExportOptions.Section} destination {destination.Name} is configured with RealIdentities", cancellationToken);
                }

                var result = await destination.DeliverAsync(shown, cancellationToken);
                if (!result.Delivered)
                {
                    LogFailed(logger, destination.Name, finding.Id, result.Status, result.Failure ?? "");
                    export.Failures.Add(new ExportFailureRow
                    {
                        Destination = destination.Name,
                        FindingId = finding.Id,
                        FindingUpdatedTicks = finding.UpdatedAt.UtcTicks,
                        Status = result.Status,
                        Reason = Truncate(result.Failure ?? "refused", 1000),
                        FailedTicks = time.GetUtcNow().UtcTicks,
                    });
                }
                else if (last is null)
                {
                    sent[finding.Id] = last = new ExportSentRow { Destination = destination.Name, FindingId = finding.Id, Fingerprint = shown.Fingerprint };
                    export.Sent.Add(last);
                }
                else
                {
                    last.Fingerprint = shown.Fingerprint;
                }
            }

            if (cursor is null)
            {
                cursor = new ExportCursorRow { Destination = destination.Name, FindingId = finding.Id };
                export.Cursors.Add(cursor);
            }

            // The cursor and the fingerprint move in one SaveChanges: a crash between send and save sends again (at least once).
            cursor.UpdatedTicks = finding.UpdatedAt.UtcTicks;
            cursor.FindingId = finding.Id;
            cursor.SavedTicks = time.GetUtcNow().UtcTicks;
            await export.SaveChangesAsync(cancellationToken);
        }

        return batch.Count;
    }

    /// <summary>The actor of an audited release to a push destination: the service itself, on the operator's configuration.</summary>
    private static ReviewCaller ExportActor(IFindingDestination destination) =>
        new($"system:export:{destination.Name}", $"findings export to {destination.Name}", null, null, null, null);

    private async Task RunAsync(IFindingDestination destination, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (await PumpAsync(destination, cancellationToken) > 0)
                {
                    continue;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogPumpFailed(logger, destination.Name, e);
            }

            try
            {
                await Task.Delay(_options.PollInterval, time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task StopAsync(CancellationTokenSource workers, Task running)
    {
        await workers.CancelAsync();
        try
        {
            await running;
        }
        catch (OperationCanceledException)
        {
            // Stopped as asked.
        }
        finally
        {
            workers.Dispose();
        }
    }

    private async Task<bool> HoldLeaseAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ExportDbContext>();
        return await ExportLease.TryHoldAsync(db, Owner, time.GetUtcNow(), _options.LeaseDuration, cancellationToken);
    }

    private async Task ReleaseLeaseAsync()
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<ExportDbContext>();
            await ExportLease.ReleaseAsync(db, Owner, CancellationToken.None);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The lease expires by itself; another instance only waits longer.
            LogLeaseFailed(logger, e);
        }
    }

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length];

    [LoggerMessage(EventId = 6200, Level = LogLevel.Information, Message = "Forwarding findings to SIEM destinations as {Owner}")]
    private static partial void LogAcquired(ILogger logger, string owner);

    [LoggerMessage(EventId = 6201, Level = LogLevel.Warning, Message = "Lost the findings forwarding lease ({Owner}); another instance continues from the stored cursors")]
    private static partial void LogLost(ILogger logger, string owner);

    [LoggerMessage(EventId = 6202, Level = LogLevel.Error, Message = "Could not take or renew the findings forwarding lease; it is retried")]
    private static partial void LogLeaseFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 6203, Level = LogLevel.Error, Message = "Forwarding findings to {Destination} failed; it is retried from the stored cursor")]
    private static partial void LogPumpFailed(ILogger logger, string destination, Exception exception);

    [LoggerMessage(EventId = 6205, Level = LogLevel.Warning, Message = "{Destination} receives real user identities (RealIdentities is on); every finding sent to it is recorded in the audit trail as a release")]
    private static partial void LogRealIdentities(ILogger logger, string destination);

    [LoggerMessage(EventId = 6204, Level = LogLevel.Error, Message = "{Destination} refused finding {FindingId} for good (status {Status}): {Reason}; recorded and skipped")]
    private static partial void LogFailed(ILogger logger, string destination, string findingId, int? status, string reason);
}

/// <summary>
/// The forwarding lease: one row, held by one instance until it expires. Each step is one conditional statement
/// (or an insert guarded by the primary key), so two instances never both hold it: on PostgreSQL the row lock makes
/// the second UPDATE re-check its condition; SQLite serialises writers (as <see cref="Service.PartitionLeases"/>).
/// </summary>
internal static class ExportLease
{
    public const string Name = "forwarder";

    /// <summary>Renews this owner's unexpired lease, takes over an expired one, or inserts the first; false when another holds it.</summary>
    public static async Task<bool> TryHoldAsync(ExportDbContext db, string owner, DateTimeOffset now, TimeSpan duration, CancellationToken cancellationToken)
    {
        var until = (now + duration).UtcTicks;
        var renewed = await db.Leases.Where(l => l.Name == Name && l.Owner == owner && l.ExpiresTicks >= now.UtcTicks)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.ExpiresTicks, until), cancellationToken);
        if (renewed == 1)
        {
            return true;
        }

        var taken = await db.Leases.Where(l => l.Name == Name && l.ExpiresTicks < now.UtcTicks)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.Owner, owner).SetProperty(l => l.ExpiresTicks, until), cancellationToken);
        if (taken == 1)
        {
            return true;
        }

        if (await db.Leases.AsNoTracking().AnyAsync(l => l.Name == Name, cancellationToken))
        {
            return false;
        }

        try
        {
            db.Leases.Add(new ExportLeaseRow { Name = Name, Owner = owner, ExpiresTicks = until });
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        catch (DbUpdateException)
        {
            return false; // another instance inserted it first (primary key)
        }
        finally
        {
            db.ChangeTracker.Clear();
        }
    }

    /// <summary>Gives the lease up at once (on shutdown), so another instance need not wait for the expiry.</summary>
    public static Task<int> ReleaseAsync(ExportDbContext db, string owner, CancellationToken cancellationToken) =>
        db.Leases.Where(l => l.Name == Name && l.Owner == owner).ExecuteDeleteAsync(cancellationToken);
}

/// <summary>Waits between retries: the first delay doubled per attempt, at most the maximum.</summary>
internal static class Backoff
{
    public static TimeSpan Delay(int attempt, TimeSpan first, TimeSpan max)
    {
        var factor = Math.Pow(2, Math.Clamp(attempt - 1, 0, 30));
        var delay = first * factor;
        return delay > max ? max : delay;
    }
}
