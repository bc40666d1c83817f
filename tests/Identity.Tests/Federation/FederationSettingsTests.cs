using System.Security.Claims;
using CrmSecurity.Identity.Federation;
using CrmSecurity.Tests.Support;
using Microsoft.Extensions.Configuration;

namespace CrmSecurity.Identity.Tests.Federation;

public sealed class FederationSettingsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-federation-settings-").FullName;

    [Fact]
    public void A_complete_provider_passes_and_each_missing_or_bad_setting_is_named()
    {
        var good = Validate(("corp", Provider()));
        var bad = Validate(("Corp Inc", new FederationProviderSettings
        {
            Authority = "https://idp.example.com/?tenant=1",
            Scopes = ["profile email"],
            JustInTimeCreation = true,
            RoleMappings = [new RoleMappingRule { Claim = "groups", Value = "crm-admins", Role = "{groups}" }],
        }));

        Assert.Empty(good);
        Assert.Contains("Identity:Federation:Providers:Corp Inc: the provider name must be", bad, StringComparison.Ordinal);
        Assert.Contains("Identity:Federation:Providers:Corp Inc:DisplayName is required", bad, StringComparison.Ordinal);
        Assert.Contains("Identity:Federation:Providers:Corp Inc:Authority 'https://idp.example.com/?tenant=1' is not an absolute URL without query", bad, StringComparison.Ordinal);
        Assert.Contains("Identity:Federation:Providers:Corp Inc:ClientId is required", bad, StringComparison.Ordinal);
        Assert.Contains("Identity:Federation:Providers:Corp Inc:ClientSecret is required", bad, StringComparison.Ordinal);
        Assert.Contains("Identity:Federation:Providers:Corp Inc:Scopes:0 'profile email' is not one scope", bad, StringComparison.Ordinal);
        Assert.Contains("Identity:Federation:Providers:Corp Inc:BusinessUnit is required when", bad, StringComparison.Ordinal);
        // A rule names one literal role: nothing copies a role name out of an upstream claim.
        Assert.Contains("Identity:Federation:Providers:Corp Inc:RoleMappings:0:Role '{groups}' is not a role id", bad, StringComparison.Ordinal);
    }

    [Fact]
    public void A_plain_http_authority_is_refused_unless_plain_HTTP_is_allowed()
    {
        var provider = Provider();
        provider.Authority = "http://127.0.0.1:5090/";

        Assert.Contains("Identity:Federation:Providers:corp:Authority 'http://127.0.0.1:5090/' must use https", Validate(("corp", provider)), StringComparison.Ordinal);
        Assert.Empty(Validate(("corp", provider), allowHttp: true));
    }

    [Fact]
    public void A_mapping_grants_only_the_role_it_names_and_only_when_the_claim_holds_the_value()
    {
        var provider = Provider();
        provider.RoleMappings =
        [
            new RoleMappingRule { Claim = "groups", Value = "crm-sales", Role = "sales_rep" },
            new RoleMappingRule { Claim = "groups", Value = "crm-leads", Role = "sales_manager" },
            new RoleMappingRule { Claim = "groups", Value = "crm-ghosts", Role = "not_in_the_model" },
        ];
        var principal = new ClaimsPrincipal(new ClaimsIdentity(
        [
            new Claim("groups", "crm-sales"), new Claim("groups", "security_admin"), new Claim("groups", "crm-ghosts"),
            new Claim("role", "security_admin"), new Claim("groups", "CRM-LEADS"),
        ]));
        string[] model = ["sales_rep", "sales_manager", "security_admin", "finance"];

        var wanted = FederatedSignIn.Wanted(["finance", "sales_manager"], provider, principal, role => Array.IndexOf(model, role));

        // sales_rep matched; sales_manager is managed and its value is case-sensitive, so it goes; finance is not managed and
        // stays; security_admin, named by the upstream claims, is named by no rule; an unknown role is never granted.
        Assert.Equal(["finance", "sales_rep"], wanted.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_bad_provider_setting_stops_start_up_with_exit_78_naming_it()
    {
        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Testing",
            ["DOTNET_ENVIRONMENT"] = "Testing",
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Identity__Federation__Providers__entra__DisplayName"] = "Contoso",
            ["Identity__Federation__Providers__entra__Authority"] = "https://login.microsoftonline.com/contoso/v2.0",
            ["Identity__Federation__Providers__entra__ClientId"] = "crm-security",
            ["Identity__Federation__Providers__entra__ClientSecret"] = "do-not-print-this-secret",
            ["Identity__Federation__Providers__entra__JustInTimeCreation"] = "true",
        };

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(environment, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains("Identity:Federation:Providers:entra:BusinessUnit is required when Identity:Federation:Providers:entra:JustInTimeCreation is true", output, StringComparison.Ordinal);
        Assert.DoesNotContain("do-not-print-this-secret", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static FederationProviderSettings Provider() => new()
    {
        DisplayName = "Corp",
        Authority = "https://idp.example.com/",
        ClientId = "crm",
        ClientSecret = "secret-value",
        Scopes = ["profile", "email"],
        JustInTimeCreation = true,
        BusinessUnit = "sales-west",
        RoleMappings = [new RoleMappingRule { Claim = "groups", Value = "crm-sales", Role = "sales_rep" }],
    };

    private static string Validate((string Name, FederationProviderSettings Provider) provider, bool allowHttp = false)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Identity:AllowHttp"] = allowHttp ? "true" : "false" }).Build();
        var settings = new FederationSettings();
        settings.Providers[provider.Name] = provider.Provider;
        return new FederationSettingsValidator(configuration).Validate(null, settings) is { Failed: true } result ? result.FailureMessage : "";
    }
}
