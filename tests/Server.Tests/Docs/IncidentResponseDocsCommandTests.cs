using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Server.Tests.Hosting;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// The incident-response call of docs/incident-response.md, run with bash as written against the real host in demo
/// mode, for a real user (bob) in place of USER_ID: the answer has the fields the page names and the audit trail holds the reason.
/// </summary>
[Collection(DemoHostDocs.Name)]
public sealed class IncidentResponseDocsCommandTests(DemoHost host) : IDisposable
{
    private const string DocumentedOrigin = "http://localhost:5080";
    private readonly string _directory = DocCommands.TemporaryDirectory();

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_revoke_call_answers_with_the_documented_fields_and_is_audited_with_its_reason()
    {
        var block = DocCommands.Block("incident-response.md", "incident-response-commands");
        Assert.Contains("USER_ID", block, StringComparison.Ordinal);
        var admin = await host.TokenAsync("identity.admin", DemoHost.SecOpsClient, DemoHost.SecOpsSecret);
        using var http = host.CreateClient(admin);
        var users = await http.GetFromJsonAsync<JsonElement>("admin/api/users?q=bob%40demo.example", Cancel);
        var bob = users[0].GetProperty("id").GetString()!;
        var script = block.Replace(DocumentedOrigin, host.BaseAddress.GetLeftPart(UriPartial.Authority), StringComparison.Ordinal).Replace("USER_ID", bob, StringComparison.Ordinal);

        var (exit, output) = await DocCommands.RunAsync(script, _directory);

        Assert.True(exit == 0, output);
        using var answer = JsonDocument.Parse(output);
        // The page: the answer is {"kind","value","tokensRevoked","authorizationsRevoked"}.
        Assert.Equal(["kind", "value", "tokensRevoked", "authorizationsRevoked"], answer.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal("user", answer.RootElement.GetProperty("kind").GetString());
        Assert.Equal(bob, answer.RootElement.GetProperty("value").GetString());
        var entries = await host.QueryAsync("SELECT Action, TargetId FROM identity_audit_trail WHERE \"After\" LIKE '%phished%'");
        Assert.Equal([("user.revoke", bob)], entries.Select(e => ((string)e["Action"]!, (string)e["TargetId"]!)));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
