using System.Diagnostics;
using System.Text;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>
/// docs/identity-clients.md, "DPoP": the example configuration starts the service, and the example openid-client script
/// gets a DPoP-bound token for the client that requires it (through the nonce round trip) and a decision with it.
/// </summary>
public sealed class DpopDocsTests
{
    [Fact]
    public async Task The_DPoP_example_gets_a_bound_token_and_a_decision_from_the_service_configured_by_the_example()
    {
        var folder = Path.Combine(RepositoryRoot(), "tests", "Identity.Tests", "Interop", "openid-client");
        Assert.True(Directory.Exists(Path.Combine(folder, "node_modules", "openid-client")),
            $"openid-client is not installed in {folder}: run the tests with scripts/test.sh, which runs npm ci there.");
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(Block("<!-- dpop-example:", "json")))).Build();
        var host = new IdentityHost { ExtraSettings = configuration.AsEnumerable().Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value) };
        await host.InitializeAsync();
        // The script goes beside node_modules so its import resolves; a unique name, removed afterwards.
        var script = Path.Combine(folder, $"dpop-example-{Guid.NewGuid():N}.mjs");
        try
        {
            await File.WriteAllTextAsync(script, Block("<!-- dpop-client:", "js"), TestContext.Current.CancellationToken);
            var alice = host.Services.GetRequiredService<AuthorizationModel>().Current.Users.Single(u => u.UserName == "alice").Id;

            var (exit, output) = await RunAsync(folder, script, host.Issuer, alice);

            Assert.True(exit == 0, output);
            Assert.Contains("token_type dpop", output, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("decision 200 {", output, StringComparison.Ordinal);
            Assert.Contains("\"allowed\":", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(script);
            await host.DisposeAsync();
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string folder, string script, string issuer, string userId)
    {
        var start = new ProcessStartInfo("node") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.Environment["ISSUER"] = issuer;
        start.Environment["USER_ID"] = userId;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, await output + await errors);
    }

    /// <summary>The fenced block of <paramref name="language"/> that follows <paramref name="marker"/> in docs/identity-clients.md.</summary>
    private static string Block(string marker, string language)
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot(), "docs", "identity-clients.md"));
        var start = Array.FindIndex(lines, line => line.StartsWith(marker, StringComparison.Ordinal));
        Assert.True(start >= 0 && lines[start + 1] == "```" + language, $"docs/identity-clients.md has no {language} block after {marker}.");
        return string.Join('\n', lines.Skip(start + 2).TakeWhile(line => line != "```"));
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Security.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Security.sln) was not found above the test assembly.");
    }
}
