using System.Text;
using BenchmarkDotNet.Attributes;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Scoring;
using CrmSecurity.AuditAnalyzer.Synthetic;

namespace CrmSecurity.AuditAnalyzer.Benchmarks;

/// <summary>
/// Parse-only against parse-and-score over the same generated file (200 users, 30 days, about 100,000
/// events), in the same run: the ratio is what docs/benchmarks.md reports ("Access-log analyzer: throughput and memory").
/// </summary>
[MemoryDiagnoser]
public class ScoringBenchmarks
{
    private string _folder = "";
    private string _events = "";
    private Organisation.UserDirectory _directory = Organisation.UserDirectory.Empty;
    private byte[] _line = [];

    [GlobalSetup]
    public void Setup()
    {
        _folder = Directory.CreateTempSubdirectory("crm-analyzer-bench-").FullName;
        var result = new OrganisationGenerator(new GeneratorSettings { Users = 200, Days = 30, WarmupDays = 10, Seed = 5, Noise = false }).Write(_folder);
        _events = result.EventsPath;
        _directory = Organisation.DirectoryReader.Read(result.UsersPath, new IngestionReport());
        _line = Encoding.UTF8.GetBytes(File.ReadLines(_events).First());
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_folder, recursive: true);

    [Benchmark(Baseline = true)]
    public long ParseOnly()
    {
        using var input = new EventInput([_events], new IngestionReport(), new StringPool());
        return AnalysisRun.ParseOnly(input).Events;
    }

    [Benchmark]
    public long ParseAndScore()
    {
        using var input = new EventInput([_events], new IngestionReport(), new StringPool());
        var scorer = new ScoringOptions { Directory = _directory }.Build();
        return AnalysisRun.Run(input, scorer, new IngestionReport(), _ => { }).EventsScored;
    }

    [Benchmark]
    public bool ParseOneJsonLine() =>
        new JsonLinesEventParser(new EventFields("bench", new IngestionReport(), new StringPool())).Parse(_line, 1) is not null;
}
