using System.Text.Json;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Server.Tests.Hosting;

/// <summary>
/// A development checkout as docs/install.md describes it ("Verbs in a development checkout"): <c>dotnet run --project src/Server</c> once (Development, demo data,
/// a generated development key), then the verbs with <c>dotnet run --project src/Server -- VERB</c>. <c>dotnet run</c> sets
/// only what the launch profile names (ASPNETCORE_ENVIRONMENT), so each process here gets exactly that environment and
/// no DOTNET_ENVIRONMENT, in a folder of its own that stands for the checkout.
/// </summary>
public sealed class DevelopmentCheckout : IAsyncLifetime
{
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("crm-security-checkout-").FullName;

    /// <summary>What <c>dotnet run</c> puts in the environment: the launch profile's variables, nothing else of ours.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; } = LaunchProfileEnvironment();

    public string FirstStartOutput { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        await using var server = await ServerProcess.StartAsync(Environment, Directory, cancellationToken: TestContext.Current.CancellationToken);
        FirstStartOutput = server.Output;
    }

    public async ValueTask DisposeAsync() => await TestDirectories.DeleteAsync(Directory);

    private static Dictionary<string, string?> LaunchProfileEnvironment()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Security.sln")))
        {
            root = root.Parent;
        }

        var settings = Path.Combine(root?.FullName ?? throw new InvalidOperationException("No Security.sln above the test assembly."), "src", "Server", "Properties", "launchSettings.json");
        using var document = JsonDocument.Parse(File.ReadAllText(settings), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        var environment = new Dictionary<string, string?>
        {
            // ServerProcess sets both to Testing; `dotnet run` sets neither of its own.
            ["DOTNET_ENVIRONMENT"] = null,
            ["ASPNETCORE_ENVIRONMENT"] = null,
            ["CRM_SECURITY_MASTER_KEY"] = null,
        };
        foreach (var variable in document.RootElement.GetProperty("profiles").GetProperty("Server").GetProperty("environmentVariables").EnumerateObject())
        {
            environment[variable.Name] = variable.Value.GetString();
        }

        return environment;
    }
}

public sealed class DevelopmentCheckoutVerbTests(DevelopmentCheckout checkout) : IClassFixture<DevelopmentCheckout>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public void The_launch_profile_runs_the_service_in_Development_with_a_generated_key()
    {
        Assert.Equal("Development", checkout.Environment["ASPNETCORE_ENVIRONMENT"]);
        Assert.Contains("Crypto: generated a DEVELOPMENT master key", checkout.FirstStartOutput, StringComparison.Ordinal);
        Assert.Contains("Demo mode: seeded an empty database", checkout.FirstStartOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keys_list_uses_the_development_key_the_service_made()
    {
        var (exitCode, output) = await ServerProcess.RunVerbAsync(["keys", "list"], checkout.Environment, checkout.Directory, Cancel);

        Assert.True(exitCode == 0, output);
        Assert.Contains("Crypto: using the DEVELOPMENT master key in " + Path.Combine(checkout.Directory, "data", "development-master-key"), output, StringComparison.Ordinal);
        Assert.Contains("fields", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Audit_verify_checks_the_development_database()
    {
        var (exitCode, output) = await ServerProcess.RunVerbAsync(["audit", "verify"], checkout.Environment, checkout.Directory, Cancel);

        Assert.True(exitCode == 0, output);
        Assert.Contains("Audit trail intact:", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Signing_keys_list_shows_the_generation_the_service_made()
    {
        var (exitCode, output) = await ServerProcess.RunVerbAsync(["signing-keys", "list"], checkout.Environment, checkout.Directory, Cancel);

        Assert.True(exitCode == 0, output);
        Assert.Matches(@"(?m)^\s+1  signing ", output);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }
}
