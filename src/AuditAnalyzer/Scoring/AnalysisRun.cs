using System.Diagnostics;
using System.Runtime;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Scoring;

/// <summary>What one pass over the input produced.</summary>
internal sealed record AnalysisResult(
    IngestionReport Report,
    long EventsScored,
    IReadOnlyDictionary<Severity, int> FindingsBySeverity,
    int Users,
    int UsersInLearningMode,
    int UsersNotInDirectory,
    IReadOnlyList<UserRisk> Risks,
    TimeSpan Elapsed,
    DateTimeOffset? FirstEvent,
    DateTimeOffset? LastEvent)
{
    /// <summary>The first day history-judged reasons could speak (null with the gate off); see <see cref="ScoringPolicy.OrganisationLearningDays"/>.</summary>
    public DateOnly? OrganisationLearningEnds { get; init; }

    /// <summary>Signals not raised because the organisation was still learning.</summary>
    public long SignalsHeldBack { get; init; }

    public double EventsPerSecond => Elapsed.TotalSeconds <= 0 ? 0 : EventsScored / Elapsed.TotalSeconds;
}

/// <summary>
/// One streaming pass: files -> merged events -> order and dedupe -> scorer -> findings, in memory that
/// depends on users, baselines and the lateness window only.
/// </summary>
internal static class AnalysisRun
{
    // Batches handed from the reading thread to the scoring thread: small enough that a batch's array stays off the
    // large-object heap (256 references = 2 KiB) and that the events in flight (at most BatchesAhead + 2 batches,
    // about 450 KB) mostly die young instead of being promoted; the arrays go back to the reader for reuse. With 16,384-event
    // batches copied into a fresh 128 KiB array each, every batch was a large-object allocation and the events in flight
    // outlived a gen0 budget, so a pass ran about 50 gen2 collections instead of about 14 (see docs/benchmarks.md). With
    // 8 batches ahead the events in flight were most of what each collection promoted (119 MiB a pass; 95 MiB at 2 ahead).
    // The reader, about twice as fast as the scorer, finds the queue full and sleeps until it is down to ResumeAt.
    private const int BatchSize = 256;
    private const int BatchesAhead = 4;
    private const int ResumeAt = 1;

    // Events parsed before they are scored on the single-threaded path: enough that switching between the
    // stages is rare, few enough (about 400 KB of events) that the batch is still in cache when scored and that
    // fewer events outlive a gen0 budget (it was 4,096).
    private const int SingleThreadBatchSize = 1024;

    public static AnalysisResult Run(
        EventInput input,
        Scorer scorer,
        IngestionReport report,
        Action<Finding> onFinding,
        Action<long, long>? progress = null,
        bool pipelined = true,
        CancellationToken cancellationToken = default)
    {
        // A pass is a batch job (the analyze verb and the benchmarks run it; the live service scores through LiveScoring,
        // never here): ask the GC for batch mode, i.e. no background gen2 collections running beside the two stages on
        // their cores. Measured once with the same effect from DOTNET_gcConcurrent=0, three rounds each on a loaded
        // machine: pipelined scoring rose from a median 26% to 31% of parse-only CPU (docs/benchmarks.md).
        var latency = GCSettings.LatencyMode;
        GCSettings.LatencyMode = GCLatencyMode.Batch;
        try
        {
            return RunBatch(input, scorer, report, onFinding, progress, pipelined, cancellationToken);
        }
        finally
        {
            GCSettings.LatencyMode = latency;
        }
    }

    private static AnalysisResult RunBatch(
        EventInput input,
        Scorer scorer,
        IngestionReport report,
        Action<Finding> onFinding,
        Action<long, long>? progress,
        bool pipelined,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var policy = scorer.Policy;
        var ordering = new EventOrdering(policy.Lateness, report, scorer.Baselines.Watermark);
        var ready = new List<AccessEvent>(1024);
        var closed = new List<Finding>();
        var bySeverity = Enum.GetValues<Severity>().ToDictionary(s => s, _ => 0);
        DateTimeOffset? first = null;

        void Drain()
        {
            foreach (var e in ready)
            {
                first ??= e.Timestamp;
                scorer.Score(e, closed);
            }

            ready.Clear();
            foreach (var finding in closed)
            {
                bySeverity[finding.Severity]++;
                onFinding(finding);
            }

            closed.Clear();
        }

        if (!pipelined)
        {
            // One thread, but still stage by stage: read and parse a batch, then order and score it. Switching
            // between the parser and the scorer per event made each evict the other's working set from the
            // CPU caches (lines, string pool and JSON reader state against per-user baselines); per batch each
            // stage runs with its own data warm (see docs/benchmarks.md, "Access-log analyzer: throughput and memory", for the measured effect).
            var batch = new AccessEvent[SingleThreadBatchSize];
            long count = 0;
            var more = true;
            while (more)
            {
                var n = 0;
                while (n < batch.Length && (more = input.TryRead(out var e)))
                {
                    batch[n++] = e;
                }

                for (var i = 0; i < n; i++)
                {
                    ordering.Add(batch[i], ready);
                    if (ready.Count > 0)
                    {
                        Drain();
                    }
                }

                Array.Clear(batch, 0, n);
                if (((count + n) >> 16) != (count >> 16))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    progress?.Invoke(input.BytesRead, input.TotalBytes);
                }

                count += n;
            }
        }
        else
        {
            Pipelined();
        }

        ordering.Complete(ready);
        Drain();
        scorer.Complete(closed);
        Drain();
        progress?.Invoke(input.TotalBytes, input.TotalBytes);

        report.EventsScored = scorer.EventsScored;
        if (scorer.LastEventTime is { } last)
        {
            scorer.Baselines.Watermark = last;
        }

        var asOf = scorer.LastEventTime ?? DateTimeOffset.UtcNow;
        return new AnalysisResult(
            report,
            scorer.EventsScored,
            bySeverity,
            scorer.Baselines.Users.Count,
            scorer.UsersInLearningMode,
            scorer.UsersNotInDirectory,
            scorer.Risks(asOf),
            clock.Elapsed,
            first,
            scorer.LastEventTime)
        {
            OrganisationLearningEnds = scorer.OrganisationLearningEnds,
            SignalsHeldBack = scorer.SignalsHeldBack,
        };

        void Pipelined()
        {
            // Reading and parsing run on their own thread, a bounded number of batches ahead of scoring, so the two
            // stages overlap on a multi-core machine; memory stays bounded by the hand-off, and scored batches go back
            // to the reader, so a pass allocates at most BatchesAhead + 2 arrays in all.
            var handOff = new BatchHandOff<AccessEvent[]>(BatchesAhead, ResumeAt);
            long bytesRead = 0;
            var reading = Task.Run(() =>
            {
                try
                {
                    var batch = new AccessEvent[BatchSize];
                    var n = 0;
                    while (input.TryRead(out var e))
                    {
                        batch[n++] = e;
                        if (n == BatchSize)
                        {
                            Interlocked.Exchange(ref bytesRead, input.BytesRead);
                            batch = handOff.Add(batch, n, cancellationToken) ?? new AccessEvent[BatchSize];
                            n = 0;
                        }
                    }

                    if (n > 0)
                    {
                        _ = handOff.Add(batch, n, cancellationToken);
                    }

                    handOff.Complete();
                }
                catch (Exception e)
                {
                    handOff.Complete(e);
                }
            }, cancellationToken);

            var batches = 0;
            AccessEvent[]? emptied = null;
            while (handOff.TryTake(emptied, out var batch, out var n, cancellationToken))
            {
                for (var i = 0; i < n; i++)
                {
                    ordering.Add(batch[i], ready);
                    if (ready.Count > 0)
                    {
                        Drain();
                    }
                }

                // Cleared before reuse: a scored event must not outlive its batch through the array.
                Array.Clear(batch, 0, n);
                emptied = batch;
                if ((++batches & 63) == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    progress?.Invoke(Interlocked.Read(ref bytesRead), input.TotalBytes);
                }
            }

            reading.GetAwaiter().GetResult();
        }
    }

    /// <summary>Reads and parses everything and does nothing else: the baseline the scoring speed is compared with.</summary>
    public static (long Events, TimeSpan Elapsed) ParseOnly(EventInput input)
    {
        var clock = Stopwatch.StartNew();
        long events = 0;
        while (input.TryRead(out _))
        {
            events++;
        }

        return (events, clock.Elapsed);
    }
}
