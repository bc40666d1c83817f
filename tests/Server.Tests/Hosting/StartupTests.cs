using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Server.Tests.Hosting;

public sealed class StartupTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-security-startup-").FullName;

    [Fact]
    public async Task The_service_starts_prints_its_address_and_reports_healthy()
    {
        await using var server = await ServerProcess.StartAsync(SqliteIn(_directory), cancellationToken: TestContext.Current.CancellationToken);
        using var client = new HttpClient { BaseAddress = server.BaseAddress };

        var live = await client.GetAsync(new Uri("/health/live", UriKind.Relative), TestContext.Current.CancellationToken);
        var ready = await client.GetFromJsonAsync<JsonElement>(new Uri("/health/ready", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("Healthy", ready.GetProperty("status").GetString());
        Assert.Contains($"CRM security service listening on {server.BaseAddress.ToString().TrimEnd('/')}", server.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unsupported_database_provider_stops_start_up_naming_the_setting()
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(
            new Dictionary<string, string?> { ["Database__Provider"] = "Oracle" },
            TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Database:Provider 'Oracle' is not supported. Use one of: Sqlite, PostgreSql, SqlServer.", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal); // one clear line, no stack trace
    }

    [Fact]
    public async Task PostgreSql_without_a_connection_string_stops_start_up_naming_the_setting()
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(
            new Dictionary<string, string?> { ["Database__Provider"] = "PostgreSql" },
            TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Database:ConnectionString is required when Database:Provider is PostgreSql", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_malformed_connection_string_is_reported_without_echoing_its_values()
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(
            new Dictionary<string, string?>
            {
                ["Database__Provider"] = "PostgreSql",
                ["Database__ConnectionString"] = "Host=127.0.0.1;Password=hunter2-secret;Bogus Keyword=1",
            },
            TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Database:ConnectionString is not a valid PostgreSql connection string", output, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2-secret", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_value_of_the_wrong_type_stops_start_up_naming_the_setting_but_not_the_value()
    {
        var environment = SqliteIn(_directory);
        environment["Crypto__Enabled"] = "hunter2-not-a-boolean";

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("The setting 'Crypto:Enabled' cannot be read as Boolean. Use true or false.", output, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_the_verbs_and_exits_cleanly()
    {
        var (exitCode, output) = await ServerProcess.RunVerbAsync(["--help"], cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(0, exitCode);
        Assert.Contains("serve", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_help_prints_the_host_switches_and_exits_without_starting_the_service()
    {
        // Were the service started instead, it would listen until stopped: a bounded wait tells the two apart.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));

        var (exitCode, output) = await ServerProcess.RunVerbAsync(["serve", "--help"], SqliteIn(_directory), cancellationToken: timeout.Token);

        Assert.Equal(0, exitCode);
        Assert.Contains("serve", output, StringComparison.Ordinal);
        Assert.Contains("--urls", output, StringComparison.Ordinal);
        Assert.DoesNotContain("listening on", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_demo_start_prints_where_to_go_the_demo_sign_ins_and_the_seeded_history()
    {
        var environment = SqliteIn(_directory);
        environment["Identity__DemoMode"] = "true";
        environment["Identity__AllowHttp"] = "true";
        environment["Identity__MailPickupDirectory"] = Path.Combine(_directory, "mail");
        await using var server = await ServerProcess.StartAsync(environment, cancellationToken: TestContext.Current.CancellationToken);
        var root = server.BaseAddress.ToString().TrimEnd('/');
        // The list follows the "listening on" line the start waits for: a bounded wait for the rest of it.
        for (var attempt = 0; attempt < 100 && !server.Output.Contains("liveness:", StringComparison.Ordinal); attempt++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.Contains($"sign-in page:    {root}/account/login", server.Output, StringComparison.Ordinal);
        Assert.Contains($"admin pages:     {root}/admin", server.Output, StringComparison.Ordinal);
        Assert.Contains($"findings API:    {root}/analyzer/findings", server.Output, StringComparison.Ordinal);
        Assert.Contains($"health:          {root}/health/ready", server.Output, StringComparison.Ordinal);
        Assert.Contains("alice  Alice-Sells-Widgets-42", server.Output, StringComparison.Ordinal);
        Assert.Matches(@"Demo mode: seeded \d{4,} access events \(28 days of history", server.Output);
    }

    [Fact]
    public async Task Identity_off_without_an_authority_stops_start_up_naming_the_setting()
    {
        var environment = SqliteIn(_directory);
        environment["Modules__Identity__Enabled"] = "false";

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Identity:Authority is required when Modules:Identity:Enabled is false", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_older_crypto_switch_still_counts_and_disagreeing_with_the_new_one_stops_start_up()
    {
        // The Testing environment switches Crypto off as Modules:Crypto:Enabled; a configuration written for an earlier
        // build says Crypto:Enabled. Neither may silently win.
        var environment = SqliteIn(_directory);
        environment["Crypto__Enabled"] = "true";

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:Enabled (the older name of Modules:Crypto:Enabled) is true but Modules:Crypto:Enabled is false", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_module_switch_that_is_not_a_boolean_stops_start_up_naming_it()
    {
        var environment = SqliteIn(_directory);
        environment["Modules__Crypto__Enabled"] = "yes please";

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("The setting 'Modules:Crypto:Enabled' cannot be read as Boolean. Use true or false.", output, StringComparison.Ordinal);
        Assert.DoesNotContain("yes please", output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    internal static Dictionary<string, string?> SqliteIn(string directory) => new()
    {
        ["Database__Provider"] = "Sqlite",
        ["Database__ConnectionString"] = $"Data Source={Path.Combine(directory, "security.db")}",
    };
}
