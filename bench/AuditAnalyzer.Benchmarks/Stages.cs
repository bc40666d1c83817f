using System.Diagnostics;
using System.Globalization;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Scoring;

namespace CrmSecurity.AuditAnalyzer.Benchmarks;

/// <summary>
/// The cost of each stage per event, measured apart: read and parse (from the file), the reorder/dedupe
/// window (over events already in memory), and the scorer (over events already in order). Each stage runs
/// <c>rounds</c> times and the fastest round is reported next to the median: on a shared machine other work
/// only ever adds time, so the fastest round is the closest to what the code itself costs.
/// </summary>
internal static class Stages
{
    public static int Run(string events, string users, int count, int rounds, IReadOnlyCollection<string> only)
    {
        var files = EventInput.FindFiles(events);
        var directory = DirectoryReader.Read(users, new IngestionReport());
        var parsed = new List<AccessEvent>(count);
        using (var input = new EventInput(files, new IngestionReport(), new StringPool()))
        {
            while (parsed.Count < count && input.TryRead(out var e))
            {
                parsed.Add(e);
            }
        }

        var ordered = new List<AccessEvent>(parsed.Count);
        var ordering = new EventOrdering(TimeSpan.FromHours(1), new IngestionReport());
        foreach (var e in parsed)
        {
            ordering.Add(e, ordered);
        }

        ordering.Complete(ordered);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{parsed.Count:N0} events parsed, {ordered.Count:N0} after the window; {rounds} rounds per stage"));

        var times = new Dictionary<string, List<double>> { ["parse"] = [], ["order"] = [], ["score"] = [], ["all"] = [] };
        void Stage(string name, Action action, int events)
        {
            if (only.Count == 0 || only.Contains(name))
            {
                times[name].Add(Time(action) / events);
            }
        }

        for (var round = 0; round < rounds; round++)
        {
            Stage("parse", () =>
            {
                using var input = new EventInput(files, new IngestionReport(), new StringPool());
                var n = 0;
                while (n < count && input.TryRead(out _))
                {
                    n++;
                }
            }, parsed.Count);

            Stage("order", () =>
            {
                var window = new EventOrdering(TimeSpan.FromHours(1), new IngestionReport());
                var ready = new List<AccessEvent>(1024);
                foreach (var e in parsed)
                {
                    window.Add(e, ready);
                    ready.Clear();
                }

                window.Complete(ready);
            }, parsed.Count);

            Stage("score", () =>
            {
                var scorer = new ScoringOptions { Directory = directory }.Build();
                var closed = new List<Finding>();
                foreach (var e in ordered)
                {
                    scorer.Score(e, closed);
                    closed.Clear();
                }

                scorer.Complete(closed);
            }, ordered.Count);

            Stage("all", () =>
            {
                using var input = new EventInput(files, new IngestionReport(), new StringPool());
                var scorer = new ScoringOptions { Directory = directory }.Build();
                AnalysisRun.Run(input, scorer, new IngestionReport(), _ => { }, pipelined: false);
            }, parsed.Count);
        }

        foreach (var (stage, list) in times.Where(t => t.Value.Count > 0))
        {
            list.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{stage,-6} fastest {list[0] * 1e9,7:0} ns/event, median {list[list.Count / 2] * 1e9,7:0} ns/event"));
        }

        if (times.Values.Any(t => t.Count == 0))
        {
            return 0;
        }

        var parse = times["parse"][0];
        var rest = times["order"][0] + times["score"][0];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"parse / (parse + order + score), fastest rounds: {parse / (parse + rest):P0}; parse / all (one pass, one thread): {parse / times["all"][0]:P0}"));
        return 0;
    }

    private static double Time(Action action)
    {
        var clock = Stopwatch.StartNew();
        action();
        return clock.Elapsed.TotalSeconds;
    }
}
