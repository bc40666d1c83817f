using System.Diagnostics;
using CrmSecurity.Identity.Tests.Support;

namespace CrmSecurity.Identity.Tests.Interop;

/// <summary>
/// openid-client 6 (a certified OpenID Connect relying party) and jose, from npm, against the real host:
/// discovery, client credentials, code+PKCE through the sign-in form, userinfo, refresh, introspection,
/// revocation, PAR, and DPoP-bound tokens (RFC 9449) used at the decision API. scripts/test.sh installs the packages (npm ci) from the committed package-lock.json.
/// </summary>
public sealed class OpenIdClientInteropTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task Openid_client_runs_every_flow_against_the_service()
    {
        var folder = Path.Combine(RepositoryRoot(), "tests", "Identity.Tests", "Interop", "openid-client");
        Assert.True(Directory.Exists(Path.Combine(folder, "node_modules", "openid-client")),
            $"openid-client is not installed in {folder}: run the tests with scripts/test.sh, which runs npm ci there.");

        var start = new ProcessStartInfo("node") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("interop.mjs");
        start.ArgumentList.Add(host.Issuer);
        using var node = Process.Start(start)!;
        var output = await node.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = await node.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await node.WaitForExitAsync(TestContext.Current.CancellationToken);

        Assert.True(node.ExitCode == 0, output + errors);
        foreach (var scenario in new[]
        {
            "discovery", "client_credentials", "jose verifies the access token", "authorization code with PKCE", "userinfo",
            "refresh rotates", "introspection", "revocation, then introspection says inactive", "pushed authorization request",
            "DPoP (RFC 9449): a bound client-credentials token works at the decision API", "DPoP (RFC 9449): authorization code and refresh bound to the key",
        })
        {
            Assert.Contains("ok " + scenario, output, StringComparison.Ordinal);
        }
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
