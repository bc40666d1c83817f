using System.Text.Json;
using CrmSecurity.Server.Tests.Hosting;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// The decision example of docs/authorization.md ("Decision API"), run with bash as written against the real host in demo
/// mode: the answer the host gives is the one the page shows, but for the versions (perm_ver, model_version), which depend
/// on what changed the model before.
/// </summary>
[Collection(DemoHostDocs.Name)]
public sealed class AuthorizationDocsCommandTests(DemoHost host)
{
    [Fact]
    public async Task The_documented_decision_call_gets_the_answer_the_page_shows()
    {
        var script = DocCommands.Block("authorization.md", "decision-commands").Replace("http://localhost:5080", host.BaseAddress.GetLeftPart(UriPartial.Authority), StringComparison.Ordinal);

        var (exit, output) = await DocCommands.RunAsync(script, Path.GetTempPath());

        Assert.True(exit == 0, output);
        using var answer = JsonDocument.Parse(output);
        using var shown = JsonDocument.Parse(ShownAnswer());
        foreach (var member in new[] { "allowed", "basis", "reason", "role", "depth", "token_stale" })
        {
            Assert.True(answer.RootElement.TryGetProperty(member, out var actual), $"the answer has no {member}: {output}");
            var expected = shown.RootElement.GetProperty(member).GetRawText();
            Assert.True(expected == actual.GetRawText(), $"{member}: the page shows {expected}, the host answers {actual.GetRawText()}");
        }

        Assert.Equal(JsonValueKind.Number, answer.RootElement.GetProperty("perm_ver").ValueKind);
        Assert.Equal(JsonValueKind.Number, answer.RootElement.GetProperty("model_version").ValueKind);
    }

    /// <summary>The json block right after the decision-commands block (its "Answer").</summary>
    private static string ShownAnswer()
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryDocs.Root(), "docs", "authorization.md"));
        var marker = Array.FindIndex(lines, line => line.StartsWith("<!-- decision-commands:", StringComparison.Ordinal));
        var json = Array.FindIndex(lines, marker + 2, line => line == "```json");
        Assert.True(marker >= 0 && json > marker, "docs/authorization.md shows no json answer after its decision-commands block");
        return string.Join('\n', lines.Skip(json + 1).TakeWhile(line => line != "```"));
    }
}
