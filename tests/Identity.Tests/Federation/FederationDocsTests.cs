using System.Text;
using CrmSecurity.Identity.Federation;
using Microsoft.Extensions.Configuration;

namespace CrmSecurity.Identity.Tests.Federation;

/// <summary>docs/identity-federation.md: each provider example binds and passes start-up validation as printed.</summary>
public sealed class FederationDocsTests
{
    [Theory]
    [InlineData("entra", "groups", true)]
    [InlineData("okta", "groups", true)]
    [InlineData("instance", "role", false)]
    public void The_provider_example_passes_start_up_validation(string example, string claim, bool justInTime)
    {
        var configuration = Example(example);
        var settings = new FederationSettings();
        configuration.GetSection(FederationSettings.Section).Bind(settings);

        var result = new FederationSettingsValidator(configuration).Validate(null, settings);

        Assert.False(result.Failed, result.FailureMessage);
        var provider = Assert.Single(settings.Providers).Value;
        Assert.StartsWith("https://", provider.Authority, StringComparison.Ordinal);
        Assert.Equal(justInTime, provider.JustInTimeCreation);
        Assert.NotEmpty(provider.RoleMappings);
        Assert.All(provider.RoleMappings, rule => Assert.Equal(claim, rule.Claim));
    }

    private static IConfigurationRoot Example(string name)
    {
        var text = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "identity-federation.md"));
        var start = text.IndexOf($"<!-- identity-federation-example:{name} -->", StringComparison.Ordinal);
        Assert.True(start >= 0, $"docs/identity-federation.md has no '{name}' example block");
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
}
