using System.Text.Json;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Cli;

/// <summary>The verbs end to end through the real executable, on a small generated organisation.</summary>
public sealed class AnalyzerVerbTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-cli-").FullName;
    private PostgresDatabase? _postgres;

    private string Path(string name) => System.IO.Path.Combine(_directory, name);

    [Fact]
    public async Task Generate_refuses_a_period_too_short_for_its_warm_up_naming_the_option_instead_of_crashing()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var (code, output) = await ServerProcess.RunVerbAsync(["generate", "--out", Path("short"), "--days", "30"], workingDirectory: _directory, cancellationToken: cancellationToken);

        Assert.Equal(64, code);
        Assert.Contains("--warmup-days 60 must be between 0 and --days minus 20 (10)", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);

        var (fine, fineOutput) = await ServerProcess.RunVerbAsync(["generate", "--out", Path("short"), "--days", "30", "--warmup-days", "10", "--users", "40"],
            workingDirectory: _directory, cancellationToken: cancellationToken);
        Assert.True(fine == 0, fineOutput);
    }

    [Fact]
    public async Task Generate_analyze_and_evaluate_work_end_to_end_and_a_second_run_continues_from_the_baselines()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var (generated, generateOutput) = await ServerProcess.RunVerbAsync(
            ["generate", "--out", Path("org"), "--users", "60", "--days", "45", "--warmup-days", "20", "--seed", "7", "--insider-share", "0.1", "--no-noise"],
            workingDirectory: _directory, cancellationToken: cancellationToken);
        Assert.True(generated == 0, generateOutput);

        // Real exports are not clean: a broken line and an unknown action are reported, and the rest is scored.
        var events = Path("org/events.jsonl");
        var lines = File.ReadAllLines(events).Length;
        await File.AppendAllLinesAsync(events, ["{\"timestamp\": \"2026-02-20T10:00:00Z\", \"user_id\": \"u00001\"", "{\"timestamp\":\"2026-02-23T23:59:00Z\",\"user_id\":\"u00001\",\"action\":\"teleport\"}"], cancellationToken);

        var (analyzed, analyzeOutput) = await ServerProcess.RunVerbAsync(
            ["analyze", "--events", "org/events.jsonl", "--directory", "org/users.csv", "--out", "findings.jsonl", "--database", "baselines.db", "--rejects", "rejects.txt"],
            workingDirectory: _directory, cancellationToken: cancellationToken);

        Assert.True(analyzed == 0, analyzeOutput);
        Assert.Contains("analysis summary", analyzeOutput, StringComparison.Ordinal);
        Assert.Matches($@"events scored\s*│\s*{lines:N0}", analyzeOutput);
        Assert.Contains("unknown action 'teleport'", analyzeOutput, StringComparison.Ordinal);
        Assert.Contains("Scoring 1 file(s): 100%", analyzeOutput, StringComparison.Ordinal); // plain progress when redirected
        Assert.Equal(
            [$"events.jsonl:{lines + 1}: broken_json", $"events.jsonl:{lines + 2}: unknown_action"],
            File.ReadAllLines(Path("rejects.txt")).Select(l => string.Join(": ", l.Split(": ").Take(2))));
        var findings = File.ReadAllLines(Path("findings.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.NotEmpty(findings);
        foreach (var finding in findings)
        {
            foreach (var field in new[] { "user_id", "detector", "score", "severity", "window_start", "window_end", "reasons", "event_ids" })
            {
                Assert.True(finding.TryGetProperty(field, out _), $"a finding lacks '{field}'");
            }

            Assert.InRange(finding.GetProperty("score").GetDouble(), 0, 100);
            Assert.NotEmpty(finding.GetProperty("reasons")[0].GetProperty("text").GetString()!);
        }

        var (evaluated, evaluateOutput) = await ServerProcess.RunVerbAsync(
            ["evaluate", "--answers", "org/answers.json", "--findings", "findings.jsonl", "--json", "evaluation.json"],
            workingDirectory: _directory, cancellationToken: cancellationToken);
        Assert.True(evaluated == 0, evaluateOutput);
        Assert.Contains("quality: recall", evaluateOutput, StringComparison.Ordinal);
        var evaluation = JsonDocument.Parse(await File.ReadAllTextAsync(Path("evaluation.json"), cancellationToken)).RootElement;
        Assert.True(evaluation.GetProperty("insiders").GetInt32() > 0);

        // The same events again with the same database: everything is already in the baselines.
        var (again, againOutput) = await ServerProcess.RunVerbAsync(
            ["analyze", "--events", "org/events.jsonl", "--directory", "org/users.csv", "--out", "again.jsonl", "--database", "baselines.db"],
            workingDirectory: _directory, cancellationToken: cancellationToken);
        Assert.True(again == 0, againOutput);
        Assert.Matches(@"events scored\s*│\s*0 ", againOutput);
        Assert.Matches($@"rejected: already_analysed\s*│\s*{lines:N0}", againOutput);
        Assert.Empty(File.ReadAllLines(Path("again.jsonl")));
    }

    [Fact]
    public async Task Baselines_live_in_postgresql_when_the_service_is_configured_for_it()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        _postgres = await PostgresDatabase.CreateAsync(cancellationToken: cancellationToken);
        var environment = new Dictionary<string, string?> { ["Database__Provider"] = "PostgreSql", ["Database__ConnectionString"] = _postgres.ConnectionString };
        File.WriteAllText(Path("day.jsonl"), """
            {"timestamp":"2026-03-02T09:00:00Z","event_id":"a","user_id":"u1","action":"login"}
            {"timestamp":"2026-03-02T09:10:00Z","event_id":"b","user_id":"u1","action":"read","entity":"contact"}
            """);

        var (first, firstOutput) = await ServerProcess.RunVerbAsync(["analyze", "--events", "day.jsonl", "--out", "f1.jsonl"], environment, _directory, cancellationToken);
        var (second, secondOutput) = await ServerProcess.RunVerbAsync(["analyze", "--events", "day.jsonl", "--out", "f2.jsonl"], environment, _directory, cancellationToken);

        Assert.True(first == 0, firstOutput);
        Assert.Matches(@"events scored\s*│\s*2 ", firstOutput);
        Assert.True(second == 0, secondOutput);
        Assert.Matches(@"rejected: already_analysed\s*│\s*2 ", secondOutput);
        Assert.False(File.Exists(Path("data/security.db")));
    }

    [Fact]
    public async Task A_bad_policy_stops_the_verb_with_exit_78_naming_file_line_and_setting()
    {
        File.WriteAllText(Path("policy.json"), "{\n  \"lateness_minutes\": 30,\n  \"odd_hours\": { \"max_share\": 2 }\n}\n");
        File.WriteAllText(Path("e.jsonl"), "");

        var (exitCode, output) = await ServerProcess.RunVerbAsync(
            ["analyze", "--events", "e.jsonl", "--out", "f.jsonl", "--database", "b.db", "--policy", "policy.json"],
            workingDirectory: _directory, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains($"AuditAnalyzer:Policy: {Path("policy.json")}:3: odd_hours.max_share is 2; it must be between 0.0001 and 0.5", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_events_path_exits_66_and_says_which()
    {
        var (exitCode, output) = await ServerProcess.RunVerbAsync(
            ["analyze", "--events", "nowhere.jsonl", "--out", "f.jsonl", "--database", "b.db"],
            workingDirectory: _directory, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(66, exitCode);
        Assert.Contains("No events file or folder at 'nowhere.jsonl'", output, StringComparison.Ordinal);
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }
}
