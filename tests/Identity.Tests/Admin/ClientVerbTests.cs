using System.Net;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using CrmSecurity.Identity.Data;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Identity.Tests.Admin.ClientAdminApiTests;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// The <c>clients</c> verbs of the real executable (docs/identity-clients.md, "Managing clients at run time") on a
/// production-like SQLite database: the same operations as the admin API, audited as the command line, secrets printed
/// once on stdout and never logged, even at the most verbose level.
/// </summary>
public sealed partial class ClientVerbTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-security-client-verbs-").FullName;
    private readonly Uri _origin = new($"http://127.0.0.1:{ServerProcess.FreeLoopbackPort()}/");
    private readonly string _masterKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    private Dictionary<string, string?> Settings => new()
    {
        ["Database__Provider"] = "Sqlite",
        ["Database__ConnectionString"] = $"Data Source={DatabaseFile}",
        ["Identity__DemoMode"] = "false",
        ["Identity__Issuer"] = _origin.AbsoluteUri,
        ["Identity__AllowHttp"] = "true",
        ["Identity__MailPickupDirectory"] = Path.Combine(_directory, "mail"),
        ["Identity__Clients__0__ClientId"] = "configured-crm",
        ["Identity__Clients__0__ClientSecret"] = "configured-crm-secret",
        ["Identity__Clients__0__GrantTypes__0"] = "client_credentials",
        ["Identity__Clients__0__Scopes__0"] = "crm.api",
        ["CRM_SECURITY_MASTER_KEY"] = _masterKey,
        ["Serilog__MinimumLevel__Default"] = "Verbose",
    };

    private string DatabaseFile => Path.Combine(_directory, "security.db");

    [Fact]
    public async Task The_documented_verbs_create_list_rotate_and_delete_a_client_audited_as_the_command_line()
    {
        // The commands of docs/identity-clients.md, as written there.
        var documented = Documented();
        Assert.Equal(4, documented.Count);
        var (created, createOutput) = await VerbAsync(documented[0]);
        var (listed, listOutput) = await VerbAsync(documented[1]);
        var (rotated, rotateOutput) = await VerbAsync(documented[2]);
        var first = Secret(createOutput);
        var second = Secret(rotateOutput);

        Assert.True(created == 0, createOutput);
        Assert.Single(Regex.Matches(createOutput, Regex.Escape(first)));
        Assert.True(listed == 0, listOutput);
        Assert.Matches(@"nightly-export\tconfidential\tadmin\tgrants=client_credentials\tscopes=crm.api,crm.reports", listOutput);
        Assert.Contains("configured-crm\tconfidential\tconfiguration", listOutput, StringComparison.Ordinal);
        Assert.True(rotated == 0, rotateOutput);
        Assert.Matches(@"The old secret keeps working until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", rotateOutput);
        Assert.Single(Regex.Matches(rotateOutput, Regex.Escape(second)));
        Assert.DoesNotContain(first, rotateOutput + listOutput, StringComparison.Ordinal);

        await using (var server = await ServerProcess.StartOnAsync(_origin, Settings, _directory, Cancel))
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsStatusAsync(http, "nightly-export", first)).Status); // in the overlap
            Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsStatusAsync(http, "nightly-export", second)).Status);
            Assert.DoesNotContain(first, server.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(second, server.Output, StringComparison.Ordinal);
        }

        var (deleted, deleteOutput) = await VerbAsync(documented[3]);
        var (after, afterOutput) = await VerbAsync("clients", "list");

        Assert.True(deleted == 0, deleteOutput);
        Assert.Contains("Deleted the client 'nightly-export'", deleteOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("nightly-export", afterOutput, StringComparison.Ordinal);
        var entries = await WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == "nightly-export").OrderBy(e => e.Sequence).ToListAsync(Cancel));
        Assert.Equal(["client.create", "client.secret.rotate", "client.delete"], entries.Select(e => e.Action));
        Assert.All(entries, e => Assert.StartsWith("command line: clients ", e.ActorName, StringComparison.Ordinal));
        Assert.All(entries, e => Assert.DoesNotContain(first, e.Before + e.After, StringComparison.Ordinal));
        Assert.All(entries, e => Assert.DoesNotContain(second, e.Before + e.After, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_verbs_refuse_bad_input_and_configured_clients_with_a_clear_message()
    {
        var (badRedirect, badOutput) = await VerbAsync("clients", "create", "--client-id", "web", "--grant", "authorization_code",
            "--scope", "openid", "--redirect-uri", "http://web.example.com/cb");
        var (configured, configuredOutput) = await VerbAsync("clients", "delete", "configured-crm");
        var (missing, missingOutput) = await VerbAsync("clients", "rotate-secret", "no-such-client");

        Assert.Equal(64, badRedirect);
        Assert.Contains("redirect_uris[0]", badOutput, StringComparison.Ordinal);
        Assert.Contains("must use https", badOutput, StringComparison.Ordinal);
        Assert.Equal(1, configured);
        Assert.Contains("Identity:Clients:0", configuredOutput, StringComparison.Ordinal);
        Assert.Equal(1, missing);
        Assert.Contains("There is no client 'no-such-client'", missingOutput, StringComparison.Ordinal);
        Assert.False(await WithStoreAsync(store => store.AuditTrail.AnyAsync(e => e.Action.StartsWith("client."), Cancel)));
    }

    /// <summary>The verb lines of the docs, without the <c>dotnet run ... --</c> prefix, split as a shell would (double quotes only).</summary>
    private static List<string[]> Documented() =>
        [.. ClientDocsCommandTests.Block(ClientDocsCommandTests.VerbsMarker, "sh").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Replace("dotnet run --project src/Server --no-launch-profile -- ", "", StringComparison.Ordinal))
            .Select(line => Words().Matches(line).Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Value).ToArray())];

    [GeneratedRegex("\"([^\"]*)\"|\\S+")]
    private static partial Regex Words();

    private Task<(int ExitCode, string Output)> VerbAsync(params string[] arguments) => ServerProcess.RunVerbAsync(arguments, Settings, _directory, Cancel);

    private static string Secret(string output) => SecretLine().Match(output) is { Success: true } match ? match.Groups[1].Value : throw new InvalidOperationException(output);

    [GeneratedRegex(@"only its hash is kept\):\r?\n(\S+)")]
    private static partial Regex SecretLine();

    private async Task<T> WithStoreAsync<T>(Func<IdentityStore, Task<T>> query)
    {
        await using var store = new IdentityStore(new DbContextOptionsBuilder<IdentityStore>().UseSqlite($"Data Source={DatabaseFile};Pooling=false").UseOpenIddict().Options);
        return await query(store);
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await TestDirectories.DeleteAsync(_directory);
}
