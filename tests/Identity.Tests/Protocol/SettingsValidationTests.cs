using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;

namespace CrmSecurity.Identity.Tests.Protocol;

public sealed class SettingsValidationTests
{
    [Fact]
    public void An_http_issuer_is_refused_unless_plain_HTTP_is_allowed()
    {
        var refused = Validate(new IdentitySettings { Issuer = "http://login.example.com/" });
        var allowed = Validate(new IdentitySettings { Issuer = "http://127.0.0.1:5080/", AllowHttp = true });

        Assert.Contains("Identity:Issuer 'http://login.example.com/' must use https", refused, StringComparison.Ordinal);
        Assert.Empty(allowed);
    }

    [Fact]
    public void The_password_and_implicit_grants_cannot_be_given_to_a_client()
    {
        var errors = Validate(new IdentitySettings
        {
            Clients = [new ClientSettings { ClientId = "legacy", ClientSecret = "s3cret-value", GrantTypes = ["password", "implicit"] }],
        });

        Assert.Contains("Identity:Clients:0:GrantTypes 'password' is not supported for client 'legacy'", errors, StringComparison.Ordinal);
        Assert.Contains("Identity:Clients:0:GrantTypes 'implicit' is not supported", errors, StringComparison.Ordinal);
    }

    [Fact]
    public void A_redirect_uri_with_a_fragment_and_a_publish_lead_longer_than_the_rotation_are_refused()
    {
        var errors = Validate(new IdentitySettings
        {
            SigningKeys = new SigningKeySettings { RotationInterval = TimeSpan.FromHours(12), PublishLead = TimeSpan.FromHours(24) },
            Clients = [new ClientSettings { ClientId = "app", GrantTypes = ["authorization_code"], RedirectUris = ["https://app.example.com/cb#frag"] }],
        });

        Assert.Contains("Identity:SigningKeys:RotationInterval must be longer than Identity:SigningKeys:PublishLead", errors, StringComparison.Ordinal);
        Assert.Contains("redirect URI 'https://app.example.com/cb#frag' of client 'app' must be an absolute URI without a fragment", errors, StringComparison.Ordinal);
    }

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
