using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace CrmSecurity.Server.Tests.EncryptionService;

/// <summary>
/// Runs the request/response examples of <c>docs/crypto-formats.md</c> §6 against the real host, in the page's order
/// (with a real <c>keys rotate</c> and restart before the first rewrap example), and compares each answer with the
/// page: a change to the service or to the page that makes them disagree fails here.
/// </summary>
public sealed partial class ServiceDocumentTests(GrantingCryptoServiceHost host) : IClassFixture<GrantingCryptoServiceHost>
{
    private const string Marker = "http-example:";

    [Fact]
    public async Task Every_example_of_the_service_page_answers_as_the_page_shows()
    {
        var examples = Examples();
        Assert.Equal(["encrypt-batch", "decrypt-batch", "blind-index-batch", "rewrap-batch", "rewrap", "subject-encrypt-batch", "shred", "subject-decrypt-batch"], examples.Select(e => e.Name));
        var answers = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        var rotated = false;
        foreach (var example in examples)
        {
            if (example.Name.StartsWith("rewrap", StringComparison.Ordinal) && !rotated)
            {
                await host.RestartAsync(async () =>
                {
                    var (exitCode, output) = await host.RunVerbAsync("keys", "rotate");
                    Assert.True(exitCode == 0, output);
                });
                rotated = true;
            }

            using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt crypto:index crypto:rewrap crypto:shred"));
            var request = Placeholder().Replace(example.Request, m =>
                answers[m.Groups["example"].Value].GetProperty("results")[int.Parse(m.Groups["index"].Value, System.Globalization.CultureInfo.InvariantCulture)]
                    .GetProperty("result").GetProperty("ciphertext").GetString()!);
            using var content = new StringContent(request, Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(example.Path.TrimStart('/'), content, TestContext.Current.CancellationToken);
            var actual = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.Clone();

            Assert.True((int)response.StatusCode == example.Status, $"{example.Name}: {(int)response.StatusCode} {actual}");
            var mismatch = Compare(JsonDocument.Parse(example.Response).RootElement, actual, "$");
            Assert.True(mismatch is null, $"{example.Name}: {mismatch}{Environment.NewLine}actual: {actual}");
            answers[example.Name] = actual;
        }
    }

    /// <summary>Null when <paramref name="actual"/> is as documented; otherwise where and how it differs.</summary>
    private static string? Compare(JsonElement documented, JsonElement actual, string path)
    {
        if (documented.ValueKind == JsonValueKind.String && documented.GetString()!.EndsWith("...", StringComparison.Ordinal))
        {
            return actual.ValueKind == JsonValueKind.String && actual.GetString()!.StartsWith(documented.GetString()![..^3], StringComparison.Ordinal)
                ? null
                : $"{path}: documented {documented}, got {actual}";
        }

        if (documented.ValueKind != actual.ValueKind)
        {
            return $"{path}: documented {documented.ValueKind}, got {actual.ValueKind}";
        }

        switch (documented.ValueKind)
        {
            case JsonValueKind.Object:
                var names = documented.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
                var actualNames = actual.EnumerateObject().Select(p => p.Name).Where(n => n != "type").Order(StringComparer.Ordinal).ToArray();
                if (!names.SequenceEqual(actualNames))
                {
                    return $"{path}: documented members {string.Join(", ", names)}, got {string.Join(", ", actualNames)}";
                }

                return documented.EnumerateObject().Select(p => Compare(p.Value, actual.GetProperty(p.Name), $"{path}.{p.Name}")).FirstOrDefault(m => m is not null);
            case JsonValueKind.Array:
                var items = documented.EnumerateArray().ToArray();
                var actualItems = actual.EnumerateArray().ToArray();
                return items.Length != actualItems.Length
                    ? $"{path}: documented {items.Length} items, got {actualItems.Length}"
                    : items.Select((item, i) => Compare(item, actualItems[i], $"{path}[{i}]")).FirstOrDefault(m => m is not null);
            default:
                return documented.GetRawText() == actual.GetRawText() ? null : $"{path}: documented {documented.GetRawText()}, got {actual.GetRawText()}";
        }
    }

    private static List<Example> Examples()
    {
        var lines = File.ReadAllLines(PagePath());
        var requests = new List<(string Name, string Path, string Body)>();
        var responses = new Dictionary<string, (int Status, string Body)>(StringComparer.Ordinal);
        for (var i = 0; i < lines.Length; i++)
        {
            var at = lines[i].IndexOf(Marker, StringComparison.Ordinal);
            if (!lines[i].StartsWith("```", StringComparison.Ordinal) || at < 0)
            {
                continue;
            }

            var words = lines[i][(at + Marker.Length)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var body = new StringBuilder();
            for (i++; i < lines.Length && lines[i] != "```"; i++)
            {
                body.AppendLine(lines[i]);
            }

            if (words[1] == "request")
            {
                Assert.Equal("POST", words[2]);
                requests.Add((words[0], words[3], body.ToString()));
            }
            else
            {
                responses.Add(words[0], (int.Parse(words[2], System.Globalization.CultureInfo.InvariantCulture), body.ToString()));
            }
        }

        return [.. requests.Select(r => new Example(r.Name, r.Path, r.Body, responses[r.Name].Status, responses[r.Name].Body))];
    }

    private static string PagePath()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "docs", "crypto-formats.md");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("docs/crypto-formats.md was not found above the test's directory.");
    }

    [GeneratedRegex(@"<results\[(?<index>\d+)\]\.result\.ciphertext of the (?<example>[a-z-]+) example>")]
    private static partial Regex Placeholder();

    private sealed record Example(string Name, string Path, string Request, int Status, string Response);
}
