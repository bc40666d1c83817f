using CrmSecurity.Tests.Support;

namespace CrmSecurity.Crypto.Tests.Cli;

/// <summary>The web service with the Crypto module switched on checks its settings at start.</summary>
public sealed class ServiceStartupTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-crypto-start-").FullName;

    [Fact]
    public async Task The_service_with_crypto_enabled_and_no_master_key_stops_with_exit_78_naming_the_setting()
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(
            new Dictionary<string, string?>
            {
                ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
                ["Modules__Crypto__Enabled"] = "true",
                ["Crypto__MasterKey__Variable"] = "CRM_SECURITY_TEST_UNSET_MASTER_KEY",
                ["CRM_SECURITY_TEST_UNSET_MASTER_KEY"] = null,
            },
            TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:MasterKey:Variable", output, StringComparison.Ordinal);
        Assert.Contains("CRM_SECURITY_TEST_UNSET_MASTER_KEY", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_service_with_crypto_enabled_and_an_unknown_key_source_stops_naming_the_setting()
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(
            new Dictionary<string, string?>
            {
                ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
                ["Modules__Crypto__Enabled"] = "true",
                ["Crypto__MasterKey__Source"] = "Vault",
            },
            TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:MasterKey:Source 'Vault' is not supported. Use one of: Environment, File, Pkcs11.", output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
