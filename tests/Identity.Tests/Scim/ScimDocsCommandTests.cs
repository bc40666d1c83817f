using System.Diagnostics;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Scim;

/// <summary>docs/identity-scim.md: its curl walk-throughs, as written, against the real host.</summary>
public sealed class ScimDocsCommandTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task The_documented_SCIM_walk_through_hires_finds_transfers_deactivates_and_deprovisions()
    {
        using var _ = await ScimClient.CreateAsync(host, "scim-docs", "sales", "security_admin");

        var (exit, output) = await RunAsync(DocBlocks.Block("identity-scim.md", "scim-commands"), new() { ["CLIENT_ID"] = "scim-docs", ["CLIENT_SECRET"] = "scim-docs-secret" });

        Assert.True(exit == 0, output);
        Assert.True(output.Contains("found: 1 kim", StringComparison.Ordinal), output);
        Assert.True(output.Contains("department: Key accounts", StringComparison.Ordinal), output);
        Assert.True(output.Contains("stale: 412", StringComparison.Ordinal), output);
        Assert.True(output.Contains("active: false", StringComparison.Ordinal), output);
        Assert.True(output.Contains("deleted: 204", StringComparison.Ordinal), output);
        var kim = await host.WithStoreAsync(store => store.Users.AsNoTracking().SingleAsync(u => u.UserName == "kim", Cancel));
        Assert.Equal(("HR-2001", "Key accounts", true), (kim.ExternalId, kim.Department, kim.IsDisabled));
    }

    [Fact]
    public async Task The_documented_AuthZEN_commands_find_the_endpoint_and_get_decisions()
    {
        var alice = host.Services.GetRequiredService<AuthorizationModel>().Current.Users.Single(u => u.UserName == "alice").Id;

        var (exit, output) = await RunAsync(DocBlocks.Block("identity-scim.md", "authzen-commands"), new() { ["CLIENT_ID"] = CrmClient, ["CLIENT_SECRET"] = CrmSecret, ["USER_ID"] = alice });

        Assert.True(exit == 0, output);
        Assert.True(output.Contains($"endpoint: {host.Issuer}access/v1/evaluation", StringComparison.Ordinal), output);
        Assert.True(output.Contains("decision: true (", StringComparison.Ordinal), output);
        Assert.True(output.Contains("decisions: true,false", StringComparison.Ordinal), output);
    }

    private async Task<(int ExitCode, string Output)> RunAsync(string script, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-euo", "pipefail", "-c", script })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["ISSUER"] = host.Issuer;
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(Cancel);
        var errors = process.StandardError.ReadToEndAsync(Cancel);
        await process.WaitForExitAsync(Cancel);
        return (process.ExitCode, await output + await errors);
    }
}
