using System.Globalization;
using System.Text.RegularExpressions;
using CrmSecurity.Server.Tests.Hosting;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// The command blocks of docs/audit-analyzer.md, run with bash as written: the three file verbs (generate, analyze,
/// evaluate) as the built executable on a small organisation, and the live ingestion calls against the real host in
/// demo mode (what <c>dotnet run --project src/Server</c> starts on an empty database).
/// </summary>
[Collection(DemoHostDocs.Name)]
public sealed partial class AuditAnalyzerDocsCommandTests(DemoHost host) : IDisposable
{
    private const string Page = "audit-analyzer.md";
    private const string DocumentedOrigin = "http://localhost:5080";
    private readonly string _directory = DocCommands.TemporaryDirectory();

    [Fact]
    public async Task Generate_analyze_and_evaluate_run_as_written_and_measure_the_findings_against_the_answers()
    {
        var block = DocCommands.Block(Page, "analyzer-commands");
        Assert.Contains("--users 1000", block, StringComparison.Ordinal);
        // Smaller than the page's organisation so the test takes seconds (the marker says so); the optional
        // arguments in [brackets] are left out, as a reader without a policy file would.
        var script = OptionalArguments().Replace(block.Replace("--users 1000", "--users 50", StringComparison.Ordinal), "");

        var (exit, output) = await DocCommands.RunAsync(script, _directory);

        Assert.True(exit == 0, output);
        foreach (var file in new[] { "users.csv", "events.jsonl", "answers.json", "findings.jsonl", "baselines.db" })
        {
            Assert.True(File.Exists(Path.Combine(_directory, "demo", file)), $"demo/{file} was not written:\n{output}");
        }

        Assert.Matches(@"insiders found\D*\d+ of \d+", output);
    }

    [Fact]
    public async Task The_live_ingestion_calls_store_events_and_a_findings_reader_gets_pseudonymous_findings()
    {
        var lines = DocCommands.Block(Page, "live-ingestion-commands").Split('\n');
        // The first line starts the host; the fixture is that host.
        Assert.StartsWith("dotnet run --project src/Server ", lines[0], StringComparison.Ordinal);
        var script = string.Join('\n', lines.Skip(1)).Replace(DocumentedOrigin, host.BaseAddress.GetLeftPart(UriPartial.Authority), StringComparison.Ordinal);
        var yesterday = DateTimeOffset.UtcNow.UtcDateTime.Date.AddDays(-1).AddHours(12);
        // Three lines, the second broken, as the answer the page shows.
        await File.WriteAllLinesAsync(Path.Combine(_directory, "events.jsonl"),
        [
            $"{{\"event_id\":\"doc-1\",\"timestamp\":\"{At(yesterday)}\",\"user_id\":\"ann\",\"action\":\"read\",\"entity\":\"contact\"}}",
            "{\"event_id\":\"doc-2\",\"timestamp\":",
            $"{{\"event_id\":\"doc-3\",\"timestamp\":\"{At(yesterday.AddMinutes(1))}\",\"user_id\":\"ann\",\"action\":\"search\"}}",
        ], TestContext.Current.CancellationToken);
        // The demo history is scored in the background; the last call reads findings only once there are some.
        var scored = false;
        for (var attempt = 0; attempt < 8 && !scored; attempt++)
        {
            scored = await HasFindingsAsync();
        }

        Assert.True(scored, "the demo history gave no finding of score 50 or more");

        var (exit, output) = await DocCommands.RunAsync(script, _directory);

        Assert.True(exit == 0, output);
        Assert.Contains(Shown(lines, "# {\"lines\""), output, StringComparison.Ordinal);
        // curl prints no line break after an answer: the findings are somewhere in the output, named by pseudonym.
        Assert.Matches("\"user\":\"user-[0-9a-f]{8}\"", output);
        Assert.Equal(2L, (long)(await host.QueryAsync("SELECT COUNT(*) AS n FROM analyzer_live_events WHERE user_id = 'ann'"))[0]["n"]!);
    }

    private async Task<bool> HasFindingsAsync()
    {
        var rows = await host.WaitForRowsAsync("SELECT COUNT(*) AS n FROM analyzer_live_findings WHERE score >= 50", rows => (long)rows[0]["n"]! > 0);
        return (long)rows[0]["n"]! > 0;
    }

    private static string At(DateTime time) => time.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    /// <summary>What a comment line of the block shows of an answer, up to its first "..." or a value that varies.</summary>
    private static string Shown(string[] lines, string start)
    {
        var line = lines.Single(l => l.TrimStart().StartsWith(start, StringComparison.Ordinal)).TrimStart()[2..];
        var cut = line.IndexOf("...", StringComparison.Ordinal);
        line = cut < 0 ? line : line[..cut];
        // `"user":"user-3f9a0c1e"`: the pseudonym differs per installation; its "user-" prefix does not.
        var pseudonym = line.IndexOf("\"user-", StringComparison.Ordinal);
        return pseudonym < 0 ? line : line[..(pseudonym + "\"user-".Length)];
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [GeneratedRegex(@"\s*\[--[^\]]*\]")]
    private static partial Regex OptionalArguments();
}
