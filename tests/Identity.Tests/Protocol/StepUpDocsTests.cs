using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>
/// docs/identity-clients.md, "MFA policy and step-up" and "Back-channel logout": the example configuration binds and
/// passes start-up validation, and the validation refuses a logout URL it must not call.
/// </summary>
public sealed class StepUpDocsTests
{
    private const string ExampleMarker = "<!-- identity-stepup-example:";

    [Fact]
    public void The_step_up_and_back_channel_logout_example_passes_start_up_validation()
    {
        var settings = Bind(Example());

        var errors = Validate(settings);

        Assert.Empty(errors);
        var client = Assert.Single(settings.Clients);
        Assert.True(client.RequireMfa);
        Assert.Equal("https://payments.example.com/backchannel-logout", client.BackchannelLogoutUri);
        Assert.True(client.BackchannelLogoutSessionRequired);
        Assert.Equal(["crypto:decrypt"], settings.Mfa.Scopes);
        Assert.Equal(["security_admin", "auditor"], settings.Mfa.Roles);
        Assert.Equal(TimeSpan.FromMinutes(5), settings.Mfa.FreshAuthenticationToTurnOff);
        Assert.Equal(5, settings.BackchannelLogout.MaxAttempts);
    }

    [Theory]
    [InlineData("http://payments.example.com/backchannel-logout", "Identity:Clients:0:BackchannelLogoutUri of client 'payments-portal'", "must use https")]
    [InlineData("https://payments.example.com/backchannel-logout#end", "Identity:Clients:0:BackchannelLogoutUri of client 'payments-portal'", "without user information or fragment")]
    public void A_back_channel_logout_uri_the_service_must_not_call_is_refused_naming_the_setting(string uri, string setting, string why)
    {
        var configuration = Example();
        configuration["Identity:Clients:0:BackchannelLogoutUri"] = uri;

        var errors = Validate(Bind(configuration));

        var error = Assert.Single(errors);
        Assert.StartsWith(setting, error, StringComparison.Ordinal);
        Assert.Contains(why, error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_non_positive_fresh_sign_in_window_is_refused_naming_the_setting()
    {
        var configuration = Example();
        configuration["Identity:Mfa:FreshAuthenticationToTurnOff"] = "00:00:00";

        Assert.Contains("Identity:Mfa:FreshAuthenticationToTurnOff must be positive, e.g. 00:05:00.", Validate(Bind(configuration)));
    }

    private static IdentitySettings Bind(IConfiguration configuration)
    {
        var settings = new IdentitySettings();
        configuration.GetSection("Identity").Bind(settings);
        return settings;
    }

    private static List<string> Validate(IdentitySettings settings)
    {
        var result = new IdentitySettingsValidator(new ProductionEnvironment(), new ConfigurationBuilder().Build()).Validate(null, settings);
        // Production also wants an issuer and AllowedHosts, which the example leaves to docs/install.md and docs/configuration.md.
        return result.Failed ? [.. result.Failures.Where(f => !f.Contains("Issuer", StringComparison.Ordinal) && !f.Contains("AllowedHosts", StringComparison.Ordinal))] : [];
    }

    private static IConfigurationRoot Example()
    {
        var text = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "identity-clients.md"));
        var start = text.IndexOf(ExampleMarker, StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/identity-clients.md has no step-up example block");
        var open = text.IndexOf("```json", start, StringComparison.Ordinal) + "```json".Length;
        var close = text.IndexOf("```", open, StringComparison.Ordinal);
        return new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(text[open..close]))).Build();
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Security.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("The repository root (Security.sln) was not found.");
    }

    private sealed class ProductionEnvironment : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = Environments.Production;

        public string ApplicationName { get; set; } = "CrmSecurity.Server";

        public string ContentRootPath { get; set; } = "/";

        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
