using System.Net;
using CrmSecurity.Identity.Clients;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>Identity:Clients:N:JwksUri and Identity:ClientJwks are checked at start; the SSRF guard refuses internal addresses.</summary>
public sealed class JwksUriSettingsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-identity-jwksuri-").FullName;

    [Fact]
    public void An_https_jwks_uri_without_a_secret_may_use_client_credentials()
    {
        Assert.Empty(Validate(Client(uri: "https://keys.example.com/batch/jwks.json")));
    }

    [Fact]
    public void Jwks_and_JwksUri_together_are_refused_naming_both_settings()
    {
        using var key = ClientKeyPair.Ec();

        var errors = Validate(Client(jwks: key.Jwks(), uri: "https://keys.example.com/jwks.json"));

        Assert.Contains("Identity:Clients:0:JwksUri and Identity:Clients:0:Jwks are both set for client 'batch'", errors, StringComparison.Ordinal);
    }

    [Fact]
    public void Neither_a_secret_nor_keys_for_client_credentials_is_refused()
    {
        Assert.Contains("needs a ClientSecret, Jwks or JwksUri", Validate(Client()), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://keys.example.com/jwks.json", false, "Identity:Clients:0:JwksUri of client 'batch' 'http://keys.example.com/jwks.json' must use https.")]
    [InlineData("http://keys.example.com/jwks.json", true, "must use https.")]
    [InlineData("http://127.0.0.1:9000/jwks.json", false, "needs Identity:ClientJwks:AllowLoopbackHttp")]
    [InlineData("keys/jwks.json", false, "must be an absolute URL")]
    [InlineData("https://user:pw@keys.example.com/jwks.json", false, "without user information")]
    public void A_jwks_uri_that_is_not_https_is_refused_naming_the_setting(string uri, bool allowLoopbackHttp, string expected)
    {
        var settings = Client(uri: uri);
        settings.ClientJwks.AllowLoopbackHttp = allowLoopbackHttp;

        Assert.Contains(expected, Validate(settings), StringComparison.Ordinal);
    }

    [Fact]
    public void Loopback_http_is_allowed_in_Testing_and_refused_in_Production()
    {
        var settings = Client(uri: "http://127.0.0.1:9000/jwks.json");
        settings.ClientJwks.AllowLoopbackHttp = true;

        Assert.Empty(Validate(settings));
        Assert.Contains("Identity:ClientJwks:AllowLoopbackHttp is true in the Production environment", Validate(settings, "Production"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("169.254.169.254")] // cloud metadata service
    [InlineData("10.1.2.3")]
    [InlineData("172.16.0.1")]
    [InlineData("192.168.1.10")]
    [InlineData("100.64.0.1")]
    [InlineData("127.0.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("::1")]
    [InlineData("fe80::1")]
    [InlineData("fd00:ec2::254")] // AWS metadata over IPv6
    [InlineData("::ffff:10.0.0.1")] // IPv4-mapped
    [InlineData("::ffff:169.254.169.254")]
    [InlineData("64:ff9b::a9fe:a9fe")] // NAT64 of 169.254.169.254
    [InlineData("224.0.0.1")]
    public void The_guard_refuses_internal_addresses(string address)
    {
        var guard = new JwksAddressGuard(allowLoopback: false, []);

        Assert.False(guard.Allows(IPAddress.Parse(address)));
    }

    [Theory]
    [InlineData("93.184.215.14")]
    [InlineData("2606:4700:4700::1111")]
    [InlineData("64:ff9b::5db8:d70e")] // NAT64 of a public address
    public void The_guard_allows_public_addresses(string address)
    {
        Assert.True(new JwksAddressGuard(allowLoopback: false, []).Allows(IPAddress.Parse(address)));
    }

    [Fact]
    public void Only_networks_listed_in_AllowedNetworks_and_loopback_when_allowed_pass_the_guard()
    {
        var guard = new JwksAddressGuard(allowLoopback: true, [IPNetwork.Parse("10.20.0.0/16")]);

        Assert.True(guard.Allows(IPAddress.Parse("10.20.1.1")));
        Assert.False(guard.Allows(IPAddress.Parse("10.21.1.1")));
        Assert.True(guard.Allows(IPAddress.Loopback));
        Assert.False(guard.Allows(IPAddress.Parse("169.254.169.254")));
    }

    [Fact]
    public void An_allowed_network_that_is_not_CIDR_is_refused_naming_the_setting()
    {
        var settings = Client(uri: "https://keys.example.com/jwks.json");
        settings.ClientJwks.AllowedNetworks = ["10.20.0.0/16", "keys.internal"];

        Assert.Contains("Identity:ClientJwks:AllowedNetworks:1 'keys.internal' is not a network in CIDR notation", Validate(settings), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Jwks_and_JwksUri_together_stop_start_up_with_exit_78()
    {
        using var key = ClientKeyPair.Ec();
        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Testing",
            ["DOTNET_ENVIRONMENT"] = "Testing",
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Identity__Clients__0__ClientId"] = "batch",
            ["Identity__Clients__0__Jwks"] = key.Jwks(),
            ["Identity__Clients__0__JwksUri"] = "https://keys.example.com/jwks.json",
            ["Identity__Clients__0__GrantTypes__0"] = "client_credentials",
        };

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Identity:Clients:0:JwksUri and Identity:Clients:0:Jwks are both set for client 'batch'", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static IdentitySettings Client(string? jwks = null, string? uri = null) => new()
    {
        Clients = [new ClientSettings { ClientId = "batch", Jwks = jwks, JwksUri = uri, GrantTypes = ["client_credentials"], Scopes = ["crm.api"] }],
    };

    private static string Validate(IdentitySettings settings, string environment = "Testing") =>
        new IdentitySettingsValidator(new Environment { EnvironmentName = environment }, new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build())
            .Validate(null, settings) is { Failed: true } result ? result.FailureMessage : "";

    private sealed class Environment : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Testing";

        public string ApplicationName { get; set; } = "tests";

        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;

        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
