using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using BenchmarkDotNet.Running;
using CrmSecurity.AuditAnalyzer.Benchmarks;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Scoring;

// Modes:
//   throughput EVENTS USERS_CSV [--rounds N] [MODE...]
//                                 the modes (default: parse order score) one after the other over the same file
//                                 in this process, with events/s, the ratio to the latest parse-only pass, GC and
//                                 JIT time, and the peak working set. With --rounds N the list is repeated N times
//                                 and the median ratio per mode is printed at the end: each round compares with
//                                 the parse pass of the same round, so a change in machine load hits both alike.
//                                 With --alloc, the types that allocate most (sampled) are listed after each mode.
//                                 Modes: parse (read and parse only), order (+ reorder/dedupe window), score1
//                                 (+ scoring, one thread), score (+ scoring, reading on a second thread).
//   stages EVENTS USERS_CSV [COUNT] [ROUNDS] [STAGE,...]
//                                 read/parse, the reorder window, the scorer, and all three in one pass (parse,
//                                 order, score, all) timed apart over the first COUNT events (default 1,000,000),
//                                 ROUNDS times (default 7); see Stages.
//   snapshot-rebuild USERS DAYS [ROUNDS]
//                                 rebuilding a partition's scorer by replaying its history against restoring it from
//                                 a snapshot, same process, same generated organisation (see SnapshotRebuild).
//   anything else                 BenchmarkDotNet micro-benchmarks (see ScoringBenchmarks).
if (args.Length >= 2 && args[0] == "throughput")
{
    return Throughput.Run(args[1], args.Length > 2 ? args[2] : null, args.Skip(3).ToArray());
}

if (args.Length >= 3 && args[0] == "stages")
{
    return Stages.Run(args[1], args[2], args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 1_000_000,
        args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 7, args.Length > 5 ? args[5].Split(',') : []);
}

if (args.Length >= 3 && args[0] == "snapshot-rebuild")
{
    return SnapshotRebuild.Run(int.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture),
        args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 3);
}

BenchmarkSwitcher.FromAssembly(typeof(ScoringBenchmarks).Assembly).Run(args);
return 0;

internal static class Throughput
{
    public static int Run(string events, string? users, string[] arguments)
    {
        var rounds = 1;
        AllocationTypes? allocations = null;
        var modes = new List<string>();
        for (var i = 0; i < arguments.Length; i++)
        {
            if (arguments[i] == "--alloc")
            {
                allocations = new AllocationTypes();
            }
            else if (arguments[i] == "--rounds" && i + 1 < arguments.Length)
            {
                rounds = int.Parse(arguments[++i], CultureInfo.InvariantCulture);
            }
            else
            {
                modes.Add(arguments[i]);
            }
        }

        if (modes.Count == 0)
        {
            modes.AddRange(["parse", "order", "score"]);
        }

        var files = EventInput.FindFiles(events);
        var ratios = new Dictionary<string, (List<double> Cpu, List<double> Wall)>();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{files.Count} file(s), {files.Sum(f => new FileInfo(f).Length) / 1048576.0:N0} MiB; {Environment.ProcessorCount} cores; GC {(GCSettings.IsServerGC ? "server" : "workstation")}, {GCSettings.LatencyMode}"));
        for (var round = 1; round <= rounds; round++)
        {
            double? parseRate = null;
            double? parseWallRate = null;
            foreach (var mode in modes)
            {
                allocations?.Start();
                var (count, seconds, cpu, gc, jit, collections) = Measure(mode, files, users);
                allocations?.Stop();
                using var self = Process.GetCurrentProcess();
                // The machine is shared: CPU seconds of this process are the fairer clock; wall time is shown too.
                var rate = count / cpu;
                if (mode == "parse")
                {
                    parseRate = rate;
                    parseWallRate = count / seconds;
                }

                var ratio = "";
                if (parseRate is { } p && parseWallRate is { } w)
                {
                    ratio = string.Create(CultureInfo.InvariantCulture, $", {rate / p:P0} of parse-only in CPU time, {count / seconds / w:P0} in wall time");
                    if (!ratios.TryGetValue(mode, out var list))
                    {
                        list = ([], []);
                        ratios[mode] = list;
                    }

                    list.Cpu.Add(rate / p);
                    list.Wall.Add(count / seconds / w);
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{(rounds > 1 ? $"[{round}] " : "")}{mode,-6} {count,12:N0} events {seconds,7:0.00} s wall {cpu,7:0.00} s CPU (GC pauses {gc:0.00} s in {collections}, JIT {jit:0.00} s) {rate,12:N0} events/CPU-s{ratio}; peak working set {self.PeakWorkingSet64 / 1048576.0:N0} MiB, GC heap {GC.GetTotalMemory(false) / 1048576.0:N0} MiB"));
                allocations?.Print(count);
            }
        }

        if (rounds > 1)
        {
            foreach (var (mode, (cpu, wall)) in ratios.Where(r => r.Key != "parse"))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{mode,-6} of parse-only over {cpu.Count} rounds: CPU time median {Median(cpu):P0} (range {cpu.Min():P0}-{cpu.Max():P0}), wall time median {Median(wall):P0} (range {wall.Min():P0}-{wall.Max():P0})"));
            }
        }

        return 0;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static (long Count, double Seconds, double Cpu, double Gc, double Jit, string Collections) Measure(string mode, IReadOnlyList<string> files, string? users)
    {
        var report = new IngestionReport();
        var directory = users is null ? UserDirectory.Empty : DirectoryReader.Read(users, report);
        using var input = new EventInput(files, report, new StringPool());
        using var self = Process.GetCurrentProcess();
        var cpuBefore = self.TotalProcessorTime;
        var gcBefore = GC.GetTotalPauseDuration();
        int[] countsBefore = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
        var jitBefore = System.Runtime.JitInfo.GetCompilationTime();
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
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
            case "score" or "score1":
                var scorer = new ScoringOptions { Directory = directory }.Build();
                long findings = 0;
                count = AnalysisRun.Run(input, scorer, report, _ => findings++, pipelined: mode == "score").EventsScored;
                break;
            default:
                throw new ArgumentException($"unknown mode '{mode}' (parse, order, score1, score)");
        }

        var seconds = clock.Elapsed.TotalSeconds;
        self.Refresh();
        return (count, seconds, (self.TotalProcessorTime - cpuBefore).TotalSeconds,
            (GC.GetTotalPauseDuration() - gcBefore).TotalSeconds, (System.Runtime.JitInfo.GetCompilationTime() - jitBefore).TotalSeconds,
            string.Create(CultureInfo.InvariantCulture, $"{GC.CollectionCount(0) - countsBefore[0]}/{GC.CollectionCount(1) - countsBefore[1]}/{GC.CollectionCount(2) - countsBefore[2]} gen0/1/2 collections, {(GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / (double)Math.Max(1, count):N0} bytes allocated per event"));
    }
}
