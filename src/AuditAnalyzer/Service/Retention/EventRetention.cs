using CrmSecurity.AuditAnalyzer.Service.IngestionWrites;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service.Retention;

/// <summary>What one retention pass did.</summary>
internal sealed record RetentionPass(DateTimeOffset Cutoff, long Deleted, int Batches);

/// <summary>
/// Deletes stored events older than <see cref="LiveOptions.RetentionDays"/> by event time, only those already scored, in
/// small steps so ingestion and scoring are never held up: the events table is walked in arrival order (<c>seq</c>, the
/// primary key) <see cref="RowsPerBatch"/> sequence numbers at a time, each step one <c>DELETE</c> in its own
/// transaction, with a short pause after each step that deleted something. The walk stops at the first step that holds
/// no event older than the cutoff: events arrive roughly in event-time order, so a pass reads about as many rows as it
/// deletes, never the whole table. An event that arrived after newer ones (a backfill of old history sent after live
/// events) waits until the events that arrived before it have aged out too. The same statements run on SQLite,
/// PostgreSQL and SQL Server. Before anything is deleted the organisation's first day is written down
/// (<see cref="OrganisationHistory.RememberFirstDayAsync"/>), so the learning period does not restart.
/// Runs on instances that score (<see cref="LiveOptions.Scoring"/>): a minute after start, then hourly.
/// </summary>
internal sealed partial class EventRetention(
    IServiceScopeFactory scopes, IOptions<LiveOptions> options, TimeProvider time, ILogger<EventRetention> logger) : BackgroundService
{
    /// <summary>Sequence numbers per step: at most this many rows are deleted in one transaction.</summary>
    public const int RowsPerBatch = 5_000;

    /// <summary>The pause after a step that deleted rows, so writers waiting on the table get their turn.</summary>
    public static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(100);

    private static readonly TimeSpan FirstPassAfter = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    private readonly SemaphoreSlim _oneAtATime = new(1, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Scoring)
        {
            return;
        }

        var wait = FirstPassAfter;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(wait, time, stoppingToken);
                await DeleteExpiredAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Each step commits on its own: a failed pass leaves the table consistent and the next one continues.
                LogFailed(logger, e);
            }

            wait = Interval;
        }
    }

    /// <summary>One pass: deletes the scored events whose event time is older than the retention, as of now.</summary>
    public async Task<RetentionPass> DeleteExpiredAsync(CancellationToken cancellationToken)
    {
        await _oneAtATime.WaitAsync(cancellationToken);
        try
        {
            var cutoff = time.GetUtcNow() - TimeSpan.FromDays(options.Value.RetentionDays);
            var cutoffTicks = cutoff.UtcTicks;
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<LiveDbContext>();
            await OrganisationHistory.RememberFirstDayAsync(db, cancellationToken);

            var sqlite = db.Database.ProviderName == "Microsoft.EntityFrameworkCore.Sqlite";
            var connection = db.Database.GetConnectionString() ?? "";
            long deleted = 0;
            var batches = 0;
            var from = await db.Events.AsNoTracking().MinAsync(e => (long?)e.Seq, cancellationToken);
            while (from is { } start)
            {
                var end = start + RowsPerBatch;
                var oldest = await db.Events.AsNoTracking().Where(e => e.Seq >= start && e.Seq < end)
                    .MinAsync(e => (long?)e.TimestampTicks, cancellationToken);
                if (oldest is null || oldest >= cutoffTicks)
                {
                    break;
                }

                int count;
                // SQLite has one writer: take the turn ingestion's batch writes take, so neither waits in SQLite's busy loop.
                using (sqlite ? await SqliteWriters.TakeTurnAsync(connection, cancellationToken) : null)
                {
                    count = await db.Events.Where(e => e.Seq >= start && e.Seq < end && e.Scored && e.TimestampTicks < cutoffTicks)
                        .ExecuteDeleteAsync(cancellationToken);
                }

                if (count > 0)
                {
                    deleted += count;
                    batches++;
                    await Task.Delay(Pause, time, cancellationToken);
                }

                from = await db.Events.AsNoTracking().Where(e => e.Seq >= end).MinAsync(e => (long?)e.Seq, cancellationToken);
            }

            if (deleted > 0)
            {
                LogDeleted(logger, deleted, batches, options.Value.RetentionDays);
            }

            return new RetentionPass(cutoff, deleted, batches);
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    public override void Dispose()
    {
        _oneAtATime.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 6150, Level = LogLevel.Information, Message = "Retention deleted {Deleted} scored events older than {Days} days in {Batches} steps")]
    private static partial void LogDeleted(ILogger logger, long deleted, int batches, int days);

    [LoggerMessage(EventId = 6151, Level = LogLevel.Error, Message = "A retention pass failed; the next one continues where it stopped")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
