using System.Text.Json;
using CrmSecurity.Server.Tests.Hosting;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>The "Try it" token request of docs/identity.md, run with bash as written against the real host in demo mode.</summary>
[Collection(DemoHostDocs.Name)]
public sealed class IdentityDocsCommandTests(DemoHost host)
{
    [Fact]
    public async Task The_demo_client_gets_a_bearer_token_for_the_crm_api()
    {
        var script = DocCommands.Block("identity.md", "try-it-commands").Replace("http://localhost:5080", host.BaseAddress.GetLeftPart(UriPartial.Authority), StringComparison.Ordinal);

        var (exit, output) = await DocCommands.RunAsync(script, Path.GetTempPath());

        Assert.True(exit == 0, output);
        using var answer = JsonDocument.Parse(output);
        Assert.Equal("Bearer", answer.RootElement.GetProperty("token_type").GetString());
        Assert.Equal(3, answer.RootElement.GetProperty("access_token").GetString()!.Split('.').Length);
    }
}
