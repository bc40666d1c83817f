using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using CrmSecurity.Server.Tests.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Server.Tests.Docs;

/// <summary>
/// The command blocks of docs/identity-admin.md outside the sections Identity.Tests runs (users, teams, resets, units,
/// roles): a role's cell changed with the version it was read at, the audit trail read, exported and verified over the
/// API, and the <c>audit verify</c> verb, each run with bash as written against the real host in demo mode.
/// </summary>
[Collection(DemoHostDocs.Name)]
public sealed partial class AdminApiDocsCommandTests(DemoHost host) : IDisposable
{
    private const string DocumentedOrigin = "http://127.0.0.1:5080";
    private readonly string _directory = DocCommands.TemporaryDirectory();

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_role_cell_is_changed_with_its_etag_and_the_audit_trail_is_read_and_verified_over_the_api()
    {
        // The audit calls use $token of the block above them. The export needs an auditor's token (a person signed in
        // through a first-party admin client, which demo mode does not seed; demo-secops may not export): left out.
        var audit = DocCommands.Block("identity-admin.md", "audit-api-commands").Split('\n');
        Assert.Contains(audit, line => line.Contains("$auditor_token", StringComparison.Ordinal));
        var script = DocCommands.Block("identity-admin.md", "admin-api-commands") + "\n"
            + string.Join('\n', audit.Where(line => !line.Contains("$auditor_token", StringComparison.Ordinal)));
        script = script.Replace(DocumentedOrigin, host.BaseAddress.GetLeftPart(UriPartial.Authority), StringComparison.Ordinal);

        var (exit, output) = await DocCommands.RunAsync(script, _directory);

        Assert.True(exit == 0, output);
        var changed = await host.QueryAsync("SELECT \"After\" FROM identity_audit_trail WHERE Action = 'role.privilege' AND TargetId = 'sales_rep'");
        Assert.True(changed.Count == 1 && ((string)changed[0]["After"]!).Contains("business_unit", StringComparison.Ordinal), output);

        var verified = output[output.LastIndexOf("{\"intact\"", StringComparison.Ordinal)..];
        var shown = DocCommands.Block("identity-admin.md", "audit-api-commands").Split('\n').Single(l => l.StartsWith("# {\"intact\"", StringComparison.Ordinal))[2..];
        Assert.StartsWith(shown[..shown.IndexOf("42", StringComparison.Ordinal)], verified, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Audit_verify_with_the_head_kept_before_a_revoke_finds_the_trail_intact_as_the_page_shows()
    {
        var lines = DocCommands.Block("identity-admin.md", "audit-verify-commands").Split('\n');
        var documented = ExpectHead().Match(lines[0]);
        Assert.True(documented.Success, "the audit verify block does not start with `... audit verify --expect-head SEQ:MAC`");
        var (_, before) = await DocCommands.RunAsync("dotnet run --project src/Server -- audit verify", _directory, VerbEnvironment());
        var kept = Head().Match(before);
        Assert.True(kept.Success, before);
        var admin = await host.TokenAsync("identity.admin", DemoHost.SecOpsClient, DemoHost.SecOpsSecret);
        using var http = host.CreateClient(admin);
        var users = await http.GetFromJsonAsync<JsonElement>("admin/api/users?q=frank%40demo.example", Cancel);
        using var revoked = await http.PostAsJsonAsync($"identity/admin/users/{users[0].GetProperty("id").GetString()}/revoke", new { reason = "kept head" }, Cancel);
        Assert.True(revoked.IsSuccessStatusCode, await revoked.Content.ReadAsStringAsync(Cancel));

        var (exit, output) = await DocCommands.RunAsync(lines[0].Replace(documented.Groups["head"].Value, kept.Groups["head"].Value, StringComparison.Ordinal), _directory, VerbEnvironment());

        Assert.True(exit == 0, output);
        var shown = lines.Single(l => l.StartsWith("# Audit trail intact:", StringComparison.Ordinal))[2..];
        Assert.Contains(shown[..shown.IndexOf(" 42 entries", StringComparison.Ordinal)], output, StringComparison.Ordinal);
        Assert.Contains("the model matches what the newest entry recorded", output, StringComparison.Ordinal);
        Assert.NotEqual(kept.Groups["head"].Value, Head().Match(output).Groups["head"].Value);
    }

    /// <summary>What the verb needs of the host's installation: its database and the key the chain's secret is wrapped under.</summary>
    private Dictionary<string, string?> VerbEnvironment()
    {
        var configuration = host.Services.GetRequiredService<IConfiguration>();
        return new()
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={host.DatabasePath}",
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = configuration["Crypto:MasterKey:File"]!,
            ["Identity__MailPickupDirectory"] = Path.Combine(_directory, "mail"),
        };
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [GeneratedRegex(@"audit verify --expect-head (?<head>\d+:[0-9a-f]+)$")]
    private static partial Regex ExpectHead();

    [GeneratedRegex(@"head (?<head>\d+:[0-9a-f]+)")]
    private static partial Regex Head();
}
