using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;

namespace CrmSecurity.Identity.Tests.Passkeys;

/// <summary>docs/identity-passkeys.md, "Settings": the example binds and passes start-up validation; bad values are refused naming the setting.</summary>
public sealed class PasskeyDocsTests
{
    private const string ExampleMarker = "<!-- identity-passkeys-example:";

    [Fact]
    public void The_passkey_settings_example_passes_start_up_validation()
    {
        var settings = Bind(Example());

        Assert.Empty(Validate(settings));
        Assert.Equal("example.com", settings.Passkeys.RelyingPartyId);
        Assert.Equal(["https://login.example.com"], settings.Passkeys.Origins);
        Assert.Equal(TimeSpan.FromMinutes(5), settings.Passkeys.CeremonyLifetime);
    }

    [Theory]
    [InlineData("Identity:Passkeys:RelyingPartyId", "https://example.com", "Identity:Passkeys:RelyingPartyId 'https://example.com' is not a host name")]
    [InlineData("Identity:Passkeys:RelyingPartyId", "10.0.0.5", "Identity:Passkeys:RelyingPartyId '10.0.0.5' is not a host name")]
    [InlineData("Identity:Passkeys:Origins:0", "https://login.example.org", "Identity:Passkeys:Origins:0 'https://login.example.org' is not on the relying party id 'example.com'")]
    [InlineData("Identity:Passkeys:Origins:0", "https://login.example.com/path", "Identity:Passkeys:Origins:0 'https://login.example.com/path' is not an origin")]
    [InlineData("Identity:Passkeys:CeremonyLifetime", "02:00:00", "Identity:Passkeys:CeremonyLifetime '02:00:00' must be positive and at most 30 minutes")]
    public void A_bad_passkey_setting_is_refused_naming_it(string key, string value, string message)
    {
        var configuration = Example();
        configuration[key] = value;

        var error = Assert.Single(Validate(Bind(configuration)));
        Assert.StartsWith(message, error, StringComparison.Ordinal);
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
        // Production also wants AllowedHosts and more, which the example leaves to docs/install.md and docs/configuration.md.
        return result.Failed ? [.. result.Failures.Where(f => f.Contains("Passkeys", StringComparison.Ordinal))] : [];
    }

    private static IConfigurationRoot Example()
    {
        var text = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "identity-passkeys.md"));
        var start = text.IndexOf(ExampleMarker, StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/identity-passkeys.md has no settings example block");
        var open = text.IndexOf("```json", start, StringComparison.Ordinal) + "```json".Length;
        var close = text.IndexOf("```", open, StringComparison.Ordinal);
        return new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(text[open..close]))).Build();
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Security.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Security.sln) was not found.");
    }

    private sealed class ProductionEnvironment : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = Environments.Production;

        public string ApplicationName { get; set; } = "CrmSecurity.Server";

        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;

        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
