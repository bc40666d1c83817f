using CrmSecurity.Tests.Support;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>The real executable, as the README's run command starts it.</summary>
public sealed class DemoModeTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-identity-demo-").FullName;

    [Fact]
    public async Task Demo_mode_seeds_an_empty_database_once_and_prints_the_sign_ins()
    {
        var environment = Environment("Development");
        string first;
        await using (var server = await ServerProcess.StartAsync(environment, cancellationToken: TestContext.Current.CancellationToken))
        {
            first = server.Output;
        }

        await using var again = await ServerProcess.StartAsync(environment, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Contains("Demo mode: seeded an empty database", first, StringComparison.Ordinal);
        Assert.Contains("alice  Alice-Sells-Widgets-42", first, StringComparison.Ordinal);
        Assert.Contains("demo-crm (secret demo-crm-secret)", first, StringComparison.Ordinal);
        Assert.DoesNotContain("Demo mode: seeded", again.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Demo_mode_is_refused_in_Production_naming_the_setting()
    {
        var environment = Environment("Production");
        environment["Identity__DemoMode"] = "true";
        // Production needs the master key first of all; with it, the demo setting is what stops start-up.
        environment["CRM_SECURITY_MASTER_KEY"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Identity:DemoMode is true but the environment is Production", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Demo mode: seeded", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_invalid_identity_setting_stops_start_up_naming_it()
    {
        var environment = Environment("Testing");
        environment["Identity__SigningKeys__AccessTokenAlgorithm"] = "HS256";
        var unconvertible = Environment("Testing");
        unconvertible["Identity__Tokens__AccessTokenLifetime"] = "ten-minutes";

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, TestContext.Current.CancellationToken);
        var (badValueExitCode, badValueOutput) = await ServerProcess.StartExpectingExitAsync(unconvertible, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Identity:SigningKeys:AccessTokenAlgorithm 'HS256' is not supported. Use ES256 or RS256.", output, StringComparison.Ordinal);
        Assert.Equal(78, badValueExitCode);
        Assert.Contains("'Identity:Tokens:AccessTokenLifetime'", badValueOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", badValueOutput, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private Dictionary<string, string?> Environment(string name) => new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = name,
        ["DOTNET_ENVIRONMENT"] = name,
        ["Database__Provider"] = "Sqlite",
        ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
    };
}
