using System.Net;
using CrmSecurity.Server.Hosting;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Server.Tests.EncryptionService;

/// <summary>The real executable: Crypto is on by default, with a generated key only in Development.</summary>
public sealed class DevelopmentKeyTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-crypto-devkey-").FullName;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task In_Development_without_a_master_key_the_service_generates_one_in_its_data_directory_says_where_and_reuses_it()
    {
        var keyFile = Path.Combine(_directory, "data", DevelopmentMasterKey.FileName);
        string first;
        await using (var server = await ServerProcess.StartAsync(Environment("Development"), workingDirectory: _directory, cancellationToken: Cancel))
        {
            first = server.Output;
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            using var unauthenticated = await http.PostAsync(new Uri("/crypto/v1/encrypt", UriKind.Relative), new StringContent("{}", System.Text.Encoding.UTF8, "application/json"), Cancel);
            Assert.Equal(HttpStatusCode.Unauthorized, unauthenticated.StatusCode); // mapped (not 404) and protected
        }

        var key = await File.ReadAllBytesAsync(keyFile, Cancel);
        await using (var again = await ServerProcess.StartAsync(Environment("Development"), workingDirectory: _directory, cancellationToken: Cancel))
        {
            Assert.Contains($"Crypto: using the DEVELOPMENT master key in {keyFile}", again.Output, StringComparison.Ordinal);
        }

        var (verbExit, verbOutput) = await ServerProcess.RunVerbAsync(["keys", "list"], Environment("Development"), _directory, Cancel);

        Assert.Contains($"Crypto: generated a DEVELOPMENT master key in {keyFile}. It is for development only", first, StringComparison.Ordinal);
        Assert.Contains($"Crypto: created the development keyring {Path.Combine(_directory, "data", "keyring.json")}", first, StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        }

        Assert.Equal(key, await File.ReadAllBytesAsync(keyFile, Cancel)); // never regenerated over the data it protects
        Assert.DoesNotContain(System.Text.Encoding.ASCII.GetString(key), first, StringComparison.Ordinal);
        Assert.True(verbExit == 0, verbOutput);
        Assert.Contains("fields", verbOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task In_Production_without_a_master_key_start_up_stops_with_78_naming_the_setting()
    {
        // In a folder of its own: other tests start the service where the tests run, outside Production, and leave a
        // development key there.
        // Identity's Production settings are given, so the master key is the one setting missing.
        var environment = Environment("Production");
        environment["Identity__Issuer"] = "https://login.example.com/";
        environment["AllowedHosts"] = "login.example.com";
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, _directory, Cancel);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:MasterKey:Variable", output, StringComparison.Ordinal);
        Assert.DoesNotContain("DEVELOPMENT master key", output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_directory, "data", DevelopmentMasterKey.FileName)));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private Dictionary<string, string?> Environment(string name) => new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = name,
        ["DOTNET_ENVIRONMENT"] = name,
        ["CRM_SECURITY_MASTER_KEY"] = "",
        ["Database__Provider"] = "Sqlite",
        ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
    };
}
