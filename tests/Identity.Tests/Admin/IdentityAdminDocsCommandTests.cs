using System.Diagnostics;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>docs/identity-admin.md: its curl commands, as written, against the real host.</summary>
public sealed class IdentityAdminDocsCommandTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task The_documented_business_unit_commands_create_rename_move_and_delete_a_unit()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var (exit, output) = await RunAsync(Block("<!-- business-unit-commands:", "sh"), host.Issuer, admin.Token);

        Assert.True(exit == 0, output);
        Assert.Contains("marketing > sales-north: Sales Nordics", output, StringComparison.Ordinal);
        Assert.Contains("still has 0 child unit(s)", output, StringComparison.Ordinal);
        var audit = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == "sales-north").OrderBy(e => e.Sequence).Select(e => e.Action).ToListAsync(Cancel));
        Assert.Equal(["business_unit.create", "business_unit.update", "business_unit.update", "business_unit.delete"], audit);
    }

    [Fact]
    public async Task The_documented_role_commands_clone_a_role_and_set_a_row_and_a_column()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var (exit, output) = await RunAsync(Block("<!-- role-commands:", "sh"), host.Issuer, admin.Token);

        Assert.True(exit == 0, output);
        Assert.Contains("\"contact\":{\"assign\":\"own\",\"create\":\"own\",\"read\":\"business_unit\",\"share\":\"own\",\"update\":\"own\"}", output, StringComparison.Ordinal);
        Assert.True(output.Contains("\"version\":3", StringComparison.Ordinal), output);
        var audit = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == "sales_rep_emea").OrderBy(e => e.Sequence).Select(e => e.Action).ToListAsync(Cancel));
        Assert.Equal(["role.create", "role.privileges", "role.privileges"], audit);
    }

    [Fact]
    public async Task The_documented_reset_link_commands_mail_bob_a_link_and_print_where_it_went()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var (exit, output) = await RunAsync(Block("<!-- reset-link-commands:", "sh"), host.Issuer, admin.Token);

        Assert.True(exit == 0, output);
        Assert.Matches(@"sent to bob@demo\.example until \d{4}-", output);
        Assert.True(await host.WithStoreAsync(store => store.AuditTrail.AnyAsync(e => e.Action == "user.password_reset_link" && e.TargetName == "bob", Cancel)));
    }

    [Fact]
    public async Task The_documented_create_and_edit_commands_create_nora_with_a_manager_then_correct_her_name_and_refuse_a_stale_version()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var (exit, output) = await RunAsync(Block("<!-- create-edit-commands:", "sh"), host.Issuer, admin.Token);

        Assert.True(exit == 0, output);
        Assert.Contains("Nora Newman <nora.newman@demo.example> in sales-west", output, StringComparison.Ordinal);
        Assert.Contains("409 version", output, StringComparison.Ordinal);
        var audit = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetName == "nora").OrderBy(e => e.Sequence).Select(e => e.Action).ToListAsync(Cancel));
        Assert.Equal(["user.create", "user.profile"], audit);
    }

    /// <summary>The fenced block of <paramref name="language"/> that follows <paramref name="marker"/> in docs/identity-admin.md.</summary>
    internal static string Block(string marker, string language)
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot(), "docs", "identity-admin.md"));
        var start = Array.FindIndex(lines, line => line.StartsWith(marker, StringComparison.Ordinal));
        Assert.True(start >= 0 && lines[start + 1] == "```" + language, $"docs/identity-admin.md has no {language} block after {marker}.");
        return string.Join('\n', lines.Skip(start + 2).TakeWhile(line => line != "```"));
    }

    /// <summary>Runs a documented block with bash (-euo pipefail), ISSUER and TOKEN set as the page says.</summary>
    internal static async Task<(int ExitCode, string Output)> RunAsync(string script, string issuer, string token)
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
