using System.Diagnostics;
using System.Net;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>docs/identity-clients.md, "Managing clients at run time": its curl commands, as written, against the real host.</summary>
public sealed class ClientDocsCommandTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    internal const string CommandsMarker = "<!-- client-admin-commands:";
    internal const string VerbsMarker = "<!-- client-verbs:";

    [Fact]
    public async Task The_documented_curl_commands_register_change_rotate_and_delete_a_client()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var (exit, output) = await RunAsync(Block(CommandsMarker, "sh"), host.Issuer, admin.Token);

        Assert.True(exit == 0, output);
        Assert.Matches(@"secret: [A-Za-z0-9_-]{43}", output);
        Assert.Matches(@"new secret: [A-Za-z0-9_-]{43}, old one until \d{4}-", output);
        Assert.True(output.Contains("tokens revoked: 0", StringComparison.Ordinal), output);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("admin/api/clients/nightly-export")).Status);
        var audit = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == "nightly-export").OrderBy(e => e.Sequence).Select(e => e.Action).ToListAsync(Cancel));
        Assert.Equal(["client.create", "client.update", "client.secret.rotate", "client.delete"], audit);
    }

    /// <summary>The fenced block of <paramref name="language"/> that follows <paramref name="marker"/> in docs/identity-clients.md.</summary>
    internal static string Block(string marker, string language)
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot(), "docs", "identity-clients.md"));
        var start = Array.FindIndex(lines, line => line.StartsWith(marker, StringComparison.Ordinal));
        Assert.True(start >= 0 && lines[start + 1] == "```" + language, $"docs/identity-clients.md has no {language} block after {marker}.");
        return string.Join('\n', lines.Skip(start + 2).TakeWhile(line => line != "```"));
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string script, string issuer, string token)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-euo", "pipefail", "-c", script })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["ISSUER"] = issuer;
        start.Environment["TOKEN"] = token;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(Cancel);
        var errors = process.StandardError.ReadToEndAsync(Cancel);
        await process.WaitForExitAsync(Cancel);
        return (process.ExitCode, await output + await errors);
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

        throw new InvalidOperationException("The repository root (Security.sln) was not found above the test assembly.");
    }
}
