using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Running;
using CrmSecurity.AuditAnalyzer.Benchmarks;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Scoring;

// Two modes:
//   throughput EVENTS USERS_CSV   parse-only, parse+order, and full scoring of the same file, one after the
//                                 other in this process, with events/s, the ratio to parse-only, and the
//                                 peak working set and GC heap of the process.
//   anything else                 BenchmarkDotNet micro-benchmarks (see ScoringBenchmarks).
if (args.Length >= 2 && args[0] == "throughput")
{
    return Throughput.Run(args[1], args.Length > 2 ? args[2] : null, args.Skip(3).ToArray());
}

BenchmarkSwitcher.FromAssembly(typeof(ScoringBenchmarks).Assembly).Run(args);
return 0;

internal static class Throughput
{
    public static int Run(string events, string? users, string[] modes)
    {
        var files = EventInput.FindFiles(events);
        var run = modes.Length == 0 ? ["parse", "order", "score"] : modes;
        double? parseRate = null;
        double? parseWallRate = null;
        foreach (var mode in run)
        {
            var report = new IngestionReport();
            var directory = users is null ? UserDirectory.Empty : DirectoryReader.Read(users, report);
            using var input = new EventInput(files, report, new StringPool());
            using var self = Process.GetCurrentProcess();
            var cpuBefore = self.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            long count = 0;
            switch (mode)
            {
                case "parse":
                    count = AnalysisRun.ParseOnly(input).Events;
                    break;
                case "order":
                    var ordering = new EventOrdering(TimeSpan.FromHours(1), report);
                    var ready = new List<AccessEvent>();
                    while (input.TryRead(out var e))
                    {
                        ordering.Add(e, ready);
                        count += ready.Count;
                        ready.Clear();
                    }

                    ordering.Complete(ready);
                    count += ready.Count;
                    break;
                default:
                    var scorer = new ScoringOptions { Directory = directory }.Build();
                    long findings = 0;
                    count = AnalysisRun.Run(input, scorer, report, _ => findings++, pipelined: mode != "score1").EventsScored;
                    break;
            }

            var seconds = clock.Elapsed.TotalSeconds;
            self.Refresh();
            var cpu = (self.TotalProcessorTime - cpuBefore).TotalSeconds;
            // The machine is shared: CPU seconds of this process are the fairer clock; wall time is shown too.
            var rate = count / cpu;
            parseRate ??= mode == "parse" ? rate : null;
            parseWallRate ??= mode == "parse" ? count / seconds : null;
            var ratio = parseRate is { } p && parseWallRate is { } w
                ? string.Create(CultureInfo.InvariantCulture, $", {rate / p:P0} of parse-only in CPU time, {count / seconds / w:P0} in wall time")
                : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{mode,-6} {count,12:N0} events {seconds,7:0.00} s wall {cpu,7:0.00} s CPU {rate,12:N0} events/CPU-s{ratio}; peak working set {self.PeakWorkingSet64 / 1048576.0:N0} MiB, GC heap {GC.GetTotalMemory(false) / 1048576.0:N0} MiB"));
        }

        return 0;
    }
}
