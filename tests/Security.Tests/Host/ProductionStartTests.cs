using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Host;

/// <summary>
/// Start-up refuses insecure Production settings with exit code 78 naming what to fix. The attacker is whoever finds a
/// Production instance that kept the demo clients (their secrets are published in docs/identity.md, "Try it").
/// </summary>
public sealed class ProductionStartTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_database_seeded_in_demo_mode_does_not_start_in_Production()
    {
        var directory = Directory.CreateTempSubdirectory("crm-security-promoted-").FullName;
        try
        {
            var database = Path.Combine(directory, "security.db");
            await host.ExecuteAsync("VACUUM INTO @path", ("@path", database));

            var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(new Dictionary<string, string?>
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                ["DOTNET_ENVIRONMENT"] = "Production",
                ["Database__Provider"] = "Sqlite",
                ["Database__ConnectionString"] = $"Data Source={database}",
                // Everything else as a careful operator sets it: the installation's key, a public origin, known hosts.
                ["Crypto__MasterKey__Source"] = "File",
                ["Crypto__MasterKey__File"] = host.MasterKeyPath,
                ["Modules__Crypto__Enabled"] = "false",
                ["Identity__Issuer"] = "https://login.example.com/",
                ["AllowedHosts"] = "login.example.com",
                ["Identity__MailPickupDirectory"] = Path.Combine(directory, "mail"),
            }, Cancel);

            Assert.Equal(78, exitCode);
            Assert.Contains("Identity:DemoMode", output, StringComparison.Ordinal);
            Assert.Contains("demo-crm", output, StringComparison.Ordinal);
            Assert.Contains("demo-secops", output, StringComparison.Ordinal);
        }
        finally
        {
            await TestDirectories.DeleteAsync(directory);
        }
    }
}
