using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>
/// docs/identity-clients.md as written: its example configuration is valid and starts the service, and its curl commands
/// for the device authorization grant run against that service.
/// </summary>
public sealed partial class ClientDocsTests
{
    private const string ExampleMarker = "<!-- identity-clients-example:";
    private const string CommandsMarker = "<!-- device-flow-commands:";

    [Fact]
    public void The_example_configuration_passes_start_up_validation()
    {
        var settings = new IdentitySettings();
        Example().GetSection("Identity").Bind(settings);

        var result = new IdentitySettingsValidator(new ProductionEnvironment(), new ConfigurationBuilder().Build()).Validate(null, settings);

        // Production also wants an issuer and AllowedHosts, which the example leaves to docs/install.md and docs/configuration.md.
        var errors = result.Failed ? result.Failures.Where(f => !f.Contains("Issuer", StringComparison.Ordinal) && !f.Contains("AllowedHosts", StringComparison.Ordinal)).ToList() : [];
        Assert.Empty(errors);
        Assert.Equal("https://keys.billing.example.com/.well-known/jwks.json", settings.Clients[0].JwksUri);
        Assert.Contains("urn:ietf:params:oauth:grant-type:device_code", settings.Clients[1].GrantTypes);
    }

    [Fact]
    public async Task The_device_flow_curl_commands_run_against_the_service_configured_by_the_example()
    {
        var host = new IdentityHost
        {
            ExtraSettings = Example().AsEnumerable().Where(pair => pair.Value is not null).ToDictionary(pair => pair.Key, pair => pair.Value),
        };
        await host.InitializeAsync();
        try
        {
            var (exit, output) = await RunAsync(Block(CommandsMarker, "sh"), host.Issuer);

            Assert.True(exit == 0, output);
            Assert.Matches(Instruction(), output);
            Assert.Contains(host.Issuer + "connect/verify", output, StringComparison.Ordinal);
            Assert.Contains("\"error\":\"authorization_pending\"", output.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
        }
        finally
        {
            await host.DisposeAsync();
        }
    }

    private static IConfigurationRoot Example() =>
        new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(Block(ExampleMarker, "json")))).Build();

    /// <summary>The fenced block of <paramref name="language"/> that follows <paramref name="marker"/> in docs/identity-clients.md.</summary>
    private static string Block(string marker, string language)
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot(), "docs", "identity-clients.md"));
        var start = Array.FindIndex(lines, line => line.StartsWith(marker, StringComparison.Ordinal));
        Assert.True(start >= 0 && lines[start + 1] == "```" + language, $"docs/identity-clients.md has no {language} block after {marker}.");
        return string.Join('\n', lines.Skip(start + 2).TakeWhile(line => line != "```"));
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string script, string issuer)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-euo", "pipefail", "-c", script })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["ISSUER"] = issuer;
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

    [GeneratedRegex(@"Open http://\S+/connect/verify and enter the code [BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}")]
    private static partial Regex Instruction();

    private sealed class ProductionEnvironment : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Production";

        public string ApplicationName { get; set; } = "tests";

        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;

        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
