using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

// A short job (BenchmarkDotNet's ShortRun, 1 launch and 3 warm-up iterations, with 15 measured iterations
// instead of 3 because the 2 cores are shared and 3 iterations were too noisy), in process, so a run fits on
// the machine. Every class measures its baseline (the raw platform primitive) in
// the same run, and the Ratio column is the figure docs/benchmarks.md quotes ("Crypto").
if (args is ["--profile-reencryption"])
{
    var bench = new CrmSecurity.Crypto.Benchmarks.ReencryptionBenchmarks();
    bench.Setup();
    for (var round = 0; round < 5; round++)
    {
        bench.Reset();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        bench.RawDecryptEncryptLoop();
        var raw = watch.Elapsed.TotalMilliseconds;
        bench.Reset();
        watch.Restart();
        bench.ReencryptionJob();
        Console.WriteLine($"raw {raw:0.0} ms, job {watch.Elapsed.TotalMilliseconds:0.0} ms");
    }

    bench.Cleanup();
    return;
}

if (args is ["--interleaved"])
{
    // A/B rounds alternating baseline and library, median of per-round ratios: robust when other processes
    // share the cores (BenchmarkDotNet measures one benchmark after the other, so load changes skew its ratios).
    CrmSecurity.Crypto.Benchmarks.Interleaved.Run();
    return;
}

var config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithIterationCount(15).WithToolchain(InProcessEmitToolchain.Instance))
    .WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);

/// <summary>Entry point.</summary>
public partial class Program;
