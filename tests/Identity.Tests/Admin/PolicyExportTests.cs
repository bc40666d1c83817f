using System.Net;
using System.Text;
using CrmSecurity.Identity.Authorization.Policies;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>The model exported as JSON through the admin API, in the format the policy files seed an installation from.</summary>
public sealed class PolicyExportTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task The_export_reads_back_as_policy_files_with_every_role_profile_and_business_unit_of_the_model()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var export = await admin.GetAsync("admin/api/policies");
        Assert.Equal(HttpStatusCode.OK, export.Status);

        // Seed a fresh policies directory from it: the shipped entity declarations plus the exported document.
        var model = host.Services.GetRequiredService<AuthorizationModel>();
        var directory = Directory.CreateTempSubdirectory("policy-export.").FullName;
        try
        {
            var shipped = Path.Combine(AppContext.BaseDirectory, "policies", "authorization", "entities.json");
            File.Copy(File.Exists(shipped) ? shipped : FindEntities(), Path.Combine(directory, "entities.json"));
            await File.WriteAllTextAsync(Path.Combine(directory, "exported.json"), export.Text, Encoding.UTF8, OAuthFlows.Cancel);

            var loaded = PolicyFiles.Load(directory);
            var snapshot = model.Current;
            Assert.Equal(snapshot.Roles.Select(r => r.Id).Order(), loaded.Roles.Select(r => r.Id).Order());
            Assert.Equal(snapshot.Profiles.Select(p => p.Id).Order(), loaded.Profiles.Select(p => p.Id).Order());
            Assert.Equal(snapshot.BusinessUnits.Select(u => u.Id).Order(), loaded.BusinessUnits.Select(u => u.Id).Order());
            var salesRep = loaded.Roles.Single(r => r.Id == "sales_rep");
            Assert.Equal(snapshot.Roles.Single(r => r.Id == "sales_rep").Definition.Privileges.Count, salesRep.Privileges.Count);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_caller_without_view_rights_on_roles_gets_no_export()
    {
        var (sales, _) = await AdminApi.ApplicationUserAsync(host, "export-sales-app", "sales-west", "sales_rep");
        using var _ = sales;
        var export = await sales.GetAsync("admin/api/policies");
        Assert.Equal(HttpStatusCode.Forbidden, export.Status);
        Assert.DoesNotContain("sales_manager", export.Text, StringComparison.Ordinal);
    }

    private static string FindEntities()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "policies", "authorization", "entities.json");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("policies/authorization/entities.json not found above the test assembly.");
    }
}
