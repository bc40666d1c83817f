using System.Diagnostics;
using System.Threading.Channels;
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
    // Large enough that the two threads rarely wait on each other; 4 batches ahead bound the memory.
    private const int BatchSize = 16_384;

    // Events parsed before they are scored on the single-threaded path: enough that switching between the
    // stages is rare, few enough (about a megabyte of events) that the batch is still in cache when scored.
    private const int SingleThreadBatchSize = 4096;

    public static AnalysisResult Run(
        EventInput input,
        Scorer scorer,
        IngestionReport report,
        Action<Finding> onFinding,
        Action<long, long>? progress = null,
        bool pipelined = true,
        CancellationToken cancellationToken = default)
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
            // Reading and parsing run on their own thread, a bounded number of batches ahead of scoring, so
            // the two stages overlap on a multi-core machine; memory stays bounded by the channel.
            var batches = Channel.CreateBounded<AccessEvent[]>(new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
            long bytesRead = 0;
            var reading = Task.Run(() =>
            {
                try
                {
                    var batch = new List<AccessEvent>(BatchSize);
                    while (input.TryRead(out var e))
                    {
                        batch.Add(e);
                        if (batch.Count == BatchSize)
                        {
                            Interlocked.Exchange(ref bytesRead, input.BytesRead);
                            while (!batches.Writer.TryWrite(batch.ToArray()))
                            {
                                batches.Writer.WaitToWriteAsync(cancellationToken).AsTask().GetAwaiter().GetResult();
                            }

                            batch.Clear();
                        }
                    }

                    if (batch.Count > 0)
                    {
                        batches.Writer.WriteAsync(batch.ToArray(), cancellationToken).AsTask().GetAwaiter().GetResult();
                    }

                    batches.Writer.Complete();
                }
                catch (Exception e)
                {
                    batches.Writer.Complete(e);
                }
            }, cancellationToken);

            var reader = batches.Reader;
            while (reader.WaitToReadAsync(cancellationToken).AsTask().GetAwaiter().GetResult())
            {
                while (reader.TryRead(out var batch))
                {
                    foreach (var e in batch)
                    {
                        ordering.Add(e, ready);
                        if (ready.Count > 0)
                        {
                            Drain();
                        }
                    }

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
