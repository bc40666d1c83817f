using System.Text.Json.Nodes;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>Identity:Clients:N:Jwks is checked at start: only public, asymmetric signing keys are registered.</summary>
public sealed class ClientKeySettingsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-identity-jwks-").FullName;

    [Fact]
    public void A_client_with_a_public_key_and_no_secret_may_use_client_credentials()
    {
        using var key = ClientKeyPair.Ec();

        Assert.Empty(Validate(Client(key.Jwks())));
    }

    [Fact]
    public void Private_key_material_in_the_JWKS_is_refused_naming_the_setting()
    {
        using var key = ClientKeyPair.Ec();
        var jwk = key.PublicJwk();
        jwk["d"] = "c2VjcmV0LXByaXZhdGUtc2NhbGFy";

        var errors = Validate(Client(new JsonObject { ["keys"] = new JsonArray(jwk) }.ToJsonString()));

        Assert.Contains("Identity:Clients:0:Jwks:keys:0 of client 'batch' contains private key material (d)", errors, StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0LXByaXZhdGUtc2NhbGFy", errors, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"keys":[{"kty":"oct","k":"c2hhcmVk"}]}""", "Identity:Clients:0:Jwks:keys:0 of client 'batch' has kty 'oct', which is not supported")]
    [InlineData("""{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}""", "has kty 'OKP', which is not supported")]
    [InlineData("""{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}""", "is a 24-bit RSA key; use at least 2048 bits")]
    [InlineData("""{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","alg":"HS256"}]}""", "has alg 'HS256', which is not supported")]
    [InlineData("""{"keys":[]}""", "Identity:Clients:0:Jwks of client 'batch' must be a JSON Web Key Set with at least one key")]
    [InlineData("""{"keys":[{"kty":"EC",""", "Identity:Clients:0:Jwks of client 'batch' is not valid JSON")]
    public void An_unusable_JWKS_is_refused_naming_the_setting(string jwks, string expected)
    {
        Assert.Contains(expected, Validate(Client(jwks)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_JWKS_holding_a_private_key_stops_start_up_with_exit_78()
    {
        using var key = ClientKeyPair.Rsa();
        var jwk = key.PublicJwk();
        jwk["d"] = "AQAB";
        jwk["p"] = "AQAB";
        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Testing",
            ["DOTNET_ENVIRONMENT"] = "Testing",
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Identity__Clients__0__ClientId"] = "batch",
            ["Identity__Clients__0__Jwks"] = new JsonObject { ["keys"] = new JsonArray(jwk) }.ToJsonString(),
            ["Identity__Clients__0__GrantTypes__0"] = "client_credentials",
        };

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Identity:Clients:0:Jwks:keys:0 of client 'batch' contains private key material (d, p)", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static IdentitySettings Client(string jwks) => new()
    {
        Clients = [new ClientSettings { ClientId = "batch", Jwks = jwks, GrantTypes = ["client_credentials"], Scopes = ["crm.api"] }],
    };

    private static string Validate(IdentitySettings settings) =>
        new IdentitySettingsValidator(new Environment(), new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build()).Validate(null, settings) is { Failed: true } result ? result.FailureMessage : "";

    private sealed class Environment : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Testing";

        public string ApplicationName { get; set; } = "tests";

        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;

        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
