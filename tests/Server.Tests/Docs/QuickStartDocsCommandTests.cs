using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using CrmSecurity.Server.Tests.AuditReview;
using CrmSecurity.Server.Tests.Hosting;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// The README's quick start, as written, against the real host in demo mode (what <c>dotnet run --project src/Server</c>
/// starts on an empty database): its command block is run with bash, the answer it shows is the answer the host gives,
/// and each sign-in it names (a page, a user and a password) signs in, carol's onto a review queue holding findings.
/// </summary>
public sealed partial class QuickStartDocsCommandTests(DemoHost host) : IClassFixture<DemoHost>
{
    private const string DocumentedOrigin = "http://localhost:5080";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_quick_start_commands_get_a_token_and_the_decision_the_readme_shows()
    {
        var section = QuickStart();
        var script = Block(section).Replace(DocumentedOrigin, Origin(), StringComparison.Ordinal);

        var (exit, output) = await RunAsync(script);

        Assert.True(exit == 0, output);
        var shown = ShownAnswer().Match(section);
        Assert.True(shown.Success, "the quick start shows no answer (`{\"allowed\": ... ...}`)");
        var expected = Whitespace().Replace(shown.Groups["prefix"].Value, " ");
        Assert.StartsWith(expected, output.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_sign_in_of_the_quick_start_works_and_carol_sees_findings_in_the_review_queue()
    {
        var signIns = SignIn().Matches(QuickStart()).Select(m => (Path: m.Groups["path"].Value, User: m.Groups["user"].Value, Password: m.Groups["password"].Value)).ToList();

        Assert.Equal(["/account/login", "/review"], signIns.Select(s => s.Path));
        foreach (var (path, user, password) in signIns)
        {
            using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = host.BaseAddress };
            using var signedIn = await ReviewHost.SignInAsync(http, user, password, path);
            Assert.True(signedIn.StatusCode == HttpStatusCode.Redirect, $"{user} did not sign in: {(int)signedIn.StatusCode}");
            Assert.Equal(path, signedIn.Headers.Location?.OriginalString);

            if (path == "/review")
            {
                var queue = await WaitForFindingsAsync(http, 3);
                Assert.True(FindingRow().Count(queue) >= 3, "the review queue does not hold the three planted incidents:\n" + queue);
            }
        }
    }

    /// <summary>The review queue page once it lists at least <paramref name="count"/> findings (the scorer works through the demo history in the background).</summary>
    private static async Task<string> WaitForFindingsAsync(HttpClient http, int count)
    {
        var page = "";
        for (var attempt = 0; attempt < 120; attempt++)
        {
            using var response = await http.GetAsync(new Uri("review", UriKind.Relative), Cancel);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            page = await response.Content.ReadAsStringAsync(Cancel);
            if (FindingRow().Count(page) >= count)
            {
                break;
            }

            await Task.Delay(500, Cancel);
        }

        return page;
    }

    private string Origin() => host.BaseAddress.GetLeftPart(UriPartial.Authority);

    /// <summary>The README's "Quick start" section, up to the next section.</summary>
    private static string QuickStart()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryDocs.Root(), "README.md"));
        var start = readme.IndexOf("\n## Quick start\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no \"## Quick start\" section");
        var end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return readme[start..(end < 0 ? readme.Length : end)];
    }

    private static string Block(string section)
    {
        var lines = section.Split('\n');
        var marker = Array.FindIndex(lines, line => line.StartsWith("<!-- quick-start-commands:", StringComparison.Ordinal));
        Assert.True(marker >= 0 && lines[marker + 1] == "```sh", "the quick start has no sh block after its quick-start-commands marker");
        return string.Join('\n', lines.Skip(marker + 2).TakeWhile(line => line != "```"));
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string script)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-euo", "pipefail", "-c", script })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(Cancel);
        var errors = process.StandardError.ReadToEndAsync(Cancel);
        await process.WaitForExitAsync(Cancel);
        return (process.ExitCode, await output + await errors);
    }

    // `{"allowed":false, ... ; ..."}`: what the README shows of the answer, up to its "...".
    [GeneratedRegex(@"`(?<prefix>\{""allowed"":[^`]*?)\.\.\.[^`]*`")]
    private static partial Regex ShownAnswer();

    // <http://localhost:5080/review> as `carol` / `Carol-Reads-The-Logs-42`
    [GeneratedRegex(@"<http://localhost:5080(?<path>/[^>]*)> as `(?<user>[^`]+)` / `(?<password>[^`]+)`")]
    private static partial Regex SignIn();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"data-finding=""")]
    private static partial Regex FindingRow();
}
