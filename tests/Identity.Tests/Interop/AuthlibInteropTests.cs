using System.Diagnostics;
using CrmSecurity.Identity.Tests.Support;

namespace CrmSecurity.Identity.Tests.Interop;

/// <summary>
/// Authlib (python3-authlib from Debian), a third-party OAuth client, authenticating with private_key_jwt against the real
/// host, with a key pair made by the commands of docs/identity.md (section "Keys instead of a secret"), run as written there.
/// scripts/test.sh installs python3-authlib.
/// </summary>
public sealed class AuthlibInteropTests : IDisposable
{
    private const string Marker = "<!-- private-key-jwt-commands:";
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-authlib-").FullName;

    [Fact]
    public async Task Authlib_authenticates_with_a_key_pair_made_by_the_README_commands()
    {
        var root = RepositoryRoot();
        // The commands name scripts/client-jwks.py relative to the checkout; run them in a scratch folder holding that script.
        Directory.CreateDirectory(Path.Combine(_directory, "scripts"));
        File.Copy(Path.Combine(root, "scripts", "client-jwks.py"), Path.Combine(_directory, "scripts", "client-jwks.py"));
        var (commandsExit, commandsOutput) = await RunAsync("bash", ["-euo", "pipefail", "-c", ReadmeCommands(root)]);
        Assert.True(commandsExit == 0, commandsOutput);

        var host = new IdentityHost
        {
            ExtraSettings = new Dictionary<string, string?>
            {
                ["Identity:Clients:0:ClientId"] = "billing-batch",
                ["Identity:Clients:0:Jwks"] = await File.ReadAllTextAsync(Path.Combine(_directory, "client-jwks.json"), TestContext.Current.CancellationToken),
                ["Identity:Clients:0:GrantTypes:0"] = "client_credentials",
                ["Identity:Clients:0:Scopes:0"] = "crm.api",
                ["Identity:Clients:0:Tenants:0"] = "demo",
            },
        };
        await host.InitializeAsync();
        try
        {
            var script = Path.Combine(root, "tests", "Identity.Tests", "Interop", "authlib", "private_key_jwt.py");
            var (exit, output) = await RunAsync(File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3", [script, host.Issuer, "billing-batch", Path.Combine(_directory, "client-key.pem"), "ES256"]);

            Assert.True(exit == 0, output);
            Assert.Contains("ok discovery", output, StringComparison.Ordinal);
            Assert.Contains("ok client_credentials", output, StringComparison.Ordinal);
            Assert.Contains("ok introspection", output, StringComparison.Ordinal);
        }
        finally
        {
            await host.DisposeAsync();
        }
    }

    [Fact]
    public async Task Authlib_authenticates_as_a_client_whose_keys_are_published_at_a_jwks_uri()
    {
        var root = RepositoryRoot();
        Directory.CreateDirectory(Path.Combine(_directory, "scripts"));
        File.Copy(Path.Combine(root, "scripts", "client-jwks.py"), Path.Combine(_directory, "scripts", "client-jwks.py"));
        var (commandsExit, commandsOutput) = await RunAsync("bash", ["-euo", "pipefail", "-c", ReadmeCommands(root)]);
        Assert.True(commandsExit == 0, commandsOutput);
        // The client's key server publishes the JWKS the commands of docs/identity.md ("Keys instead of a secret") made (docs/identity-clients.md, JwksUri).
        await using var keyServer = new JwksServer();
        keyServer.Publish("/jwks.json", await File.ReadAllTextAsync(Path.Combine(_directory, "client-jwks.json"), TestContext.Current.CancellationToken));

        var host = new IdentityHost
        {
            ExtraSettings = new Dictionary<string, string?>
            {
                ["Identity:ClientJwks:AllowLoopbackHttp"] = "true",
                ["Identity:Clients:0:ClientId"] = "billing-batch",
                ["Identity:Clients:0:JwksUri"] = keyServer.Url("/jwks.json"),
                ["Identity:Clients:0:GrantTypes:0"] = "client_credentials",
                ["Identity:Clients:0:Scopes:0"] = "crm.api",
                ["Identity:Clients:0:Tenants:0"] = "demo",
            },
        };
        await host.InitializeAsync();
        try
        {
            var script = Path.Combine(root, "tests", "Identity.Tests", "Interop", "authlib", "private_key_jwt.py");
            var (exit, output) = await RunAsync(File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3", [script, host.Issuer, "billing-batch", Path.Combine(_directory, "client-key.pem"), "ES256"]);

            Assert.True(exit == 0, output);
            Assert.Contains("ok client_credentials", output, StringComparison.Ordinal);
            Assert.Contains("ok introspection", output, StringComparison.Ordinal);
            Assert.True(keyServer.Hits("/jwks.json") >= 1);
        }
        finally
        {
            await host.DisposeAsync();
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>The shell block that follows the marker comment in docs/identity.md.</summary>
    private static string ReadmeCommands(string root)
    {
        var lines = File.ReadAllLines(Path.Combine(root, "docs", "identity.md"));
        var start = Array.FindIndex(lines, line => line.StartsWith(Marker, StringComparison.Ordinal));
        Assert.True(start >= 0 && lines[start + 1] == "```sh", "docs/identity.md has no private_key_jwt command block after the marker.");
        return string.Join('\n', lines.Skip(start + 2).TakeWhile(line => line != "```"));
    }

    private async Task<(int ExitCode, string Output)> RunAsync(string program, string[] arguments)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = _directory, RedirectStandardOutput = true, RedirectStandardError = true };
        // Debian's python3 first, the one python3-authlib and python3-cryptography are installed for (not a pyenv or venv shim);
        // the program itself is found on this process's PATH, so the Python script is started as /usr/bin/python3 directly.
        start.Environment["PATH"] = "/usr/bin:" + System.Environment.GetEnvironmentVariable("PATH");
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, await output + await errors);
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
