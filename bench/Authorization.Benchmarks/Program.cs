using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

// --percentiles: per-call p50/p99 of check + field projection next to its baseline (see Percentiles.cs).
// Otherwise BenchmarkDotNet (mean, its own percentile columns over iterations, allocations per call), short job in
// process so a run fits on the shared machine; the baseline is measured in the same run.
if (args is ["--percentiles"])
{
    CrmSecurity.Authorization.Benchmarks.Percentiles.Run();
    return;
}

var config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithIterationCount(15).WithToolchain(InProcessEmitToolchain.Instance))
    .AddColumn(BenchmarkDotNet.Columns.StatisticColumn.P95)
    .WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);

/// <summary>Entry point.</summary>
public partial class Program;
