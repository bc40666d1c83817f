using System.Text;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Policies;
using CrmSecurity.Shared;

namespace CrmSecurity.Identity.Tests.Authorization;

public sealed class PolicyFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-policies-").FullName;

    /// <summary>The policy files shipped in policies/authorization, copied next to the test assembly by the build.</summary>
    public static string Shipped => Path.Combine(AppContext.BaseDirectory, "policies", "authorization");

    [Fact]
    public void The_shipped_policies_declare_the_CRM_entities_and_every_role_template()
    {
        var policies = PolicyFiles.Load(Shipped);

        Assert.Equal(["contact", "account", "lead", "opportunity", "case", "invoice", "campaign"], policies.Entities.Select(e => e.Name));
        Assert.Equal(["sales_rep", "sales_manager", "support_agent", "marketing", "finance", "auditor", "security_admin", "system_admin"], policies.Roles.Select(r => r.Id));
        Assert.Contains(policies.Profiles, p => p.Id == "finance_banking");
        Assert.Equal("root", Assert.Single(policies.BusinessUnits).Id);
    }

    [Fact]
    public void The_auditor_template_cannot_change_roles_and_the_security_admin_cannot_review_findings()
    {
        var roles = PolicyFiles.Load(Shipped).Roles.ToDictionary(r => r.Id);

        Assert.DoesNotContain(roles["auditor"].Privileges, p => p.Entity == "security_role" && p.Action != CrmAction.Read);
        Assert.DoesNotContain(roles["auditor"].Privileges, p => p.Entity == "system_user" && p.Action == CrmAction.Assign);
        Assert.Contains(roles["auditor"].Privileges, p => p.Entity == "audit_finding" && p.Action == CrmAction.Update);
        Assert.DoesNotContain(roles["security_admin"].Privileges, p => p.Entity == "audit_finding" && p.Action == CrmAction.Update);
        Assert.DoesNotContain(roles["system_admin"].Privileges, p => p.Entity == "audit_finding" && p.Action == CrmAction.Update);
    }

    [Fact]
    public void An_unknown_depth_names_file_line_and_the_accepted_depths()
    {
        CopyShipped();
        Replace("roles.json", "\"case\": {\"read\": \"business_unit\"}", "\"case\": {\"read\": \"team\"}");

        var problem = Assert.Single(Problems());

        Assert.Equal($"{Relative("roles.json")}:{LineOf("roles.json", "\"team\"")}: role 'sales_rep': unknown depth 'team' for case:read (use one of none, own, business_unit, business_unit_and_children, organization)", problem);
    }

    [Fact]
    public void An_unknown_entity_in_a_role_names_file_and_line()
    {
        CopyShipped();
        Replace("roles.json", "\"campaign\": {\"read\": \"organization\"}\n      }\n    },\n    {\n      \"id\": \"sales_manager\"", "\"campaing\": {\"read\": \"organization\"}\n      }\n    },\n    {\n      \"id\": \"sales_manager\"");

        var problem = Assert.Single(Problems());

        Assert.Equal($"{Relative("roles.json")}:{LineOf("roles.json", "\"campaing\"")}: unknown entity 'campaing' in role 'sales_rep'", problem);
    }

    [Fact]
    public void A_cycle_in_the_business_unit_tree_names_the_file_line_and_the_cycle()
    {
        CopyShipped();
        Replace("organization.json", "{ \"id\": \"root\", \"name\": \"Organization\" }",
            "{ \"id\": \"root\", \"name\": \"Organization\" },\n    { \"id\": \"sales\", \"name\": \"Sales\", \"parent\": \"west\" },\n    { \"id\": \"west\", \"name\": \"West\", \"parent\": \"sales\" }");

        var problem = Assert.Single(Problems());

        Assert.Equal($"{Relative("organization.json")}:{LineOf("organization.json", "\"sales\", \"name\"")}: cycle in the business-unit tree: sales -> west -> sales", problem);
    }

    [Fact]
    public void A_duplicate_role_name_and_a_duplicate_key_are_both_reported()
    {
        CopyShipped();
        Replace("roles.json", "\"name\": \"Marketing\",", "\"name\": \"Finance\",");
        Replace("entities.json", "{ \"name\": \"website\", \"display_name\": \"Website\", \"sensitivity\": \"public\" }",
            "{ \"name\": \"website\", \"name\": \"web\", \"sensitivity\": \"public\" }");

        var problems = Problems();

        Assert.Contains($"{Relative("entities.json")}:{LineOf("entities.json", "\"web\"")}: duplicate name 'name'", problems);
        Assert.DoesNotContain(problems, p => p.Contains("Finance", StringComparison.Ordinal)); // broken files stop before cross-file checks
        Replace("entities.json", "\"name\": \"website\", \"name\": \"web\"", "\"name\": \"website\"");
        Assert.Contains($"{Relative("roles.json")}:{LineOf("roles.json", "\"id\": \"finance\"") - 1}: duplicate role name 'Finance' (also role 'marketing')", Problems());
    }

    [Fact]
    public void A_misspelt_setting_is_an_error_not_ignored()
    {
        CopyShipped();
        Replace("field-security-profiles.json", "\"description\": \"Finance reads", "\"descripton\": \"Finance reads");

        Assert.Contains(Problems(), p => p.EndsWith("field security profile: unknown setting 'descripton'", StringComparison.Ordinal));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private void CopyShipped()
    {
        foreach (var file in Directory.GetFiles(Shipped))
        {
            File.Copy(file, Path.Combine(_directory, Path.GetFileName(file)));
        }
    }

    private void Replace(string file, string from, string to)
    {
        var path = Path.Combine(_directory, file);
        var text = File.ReadAllText(path);
        Assert.Contains(from, text, StringComparison.Ordinal);
        File.WriteAllText(path, text.Replace(from, to, StringComparison.Ordinal), Encoding.UTF8);
    }

    private int LineOf(string file, string text) =>
        File.ReadAllLines(Path.Combine(_directory, file)).Select((line, index) => (line, index)).First(l => l.line.Contains(text, StringComparison.Ordinal)).index + 1;

    private string Relative(string file)
    {
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, Path.Combine(_directory, file));
        return relative.StartsWith("..", StringComparison.Ordinal) ? Path.Combine(_directory, file) : relative;
    }

    private IReadOnlyList<string> Problems() => Assert.Throws<PolicyException>(() => PolicyFiles.Load(_directory)).Problems;
}
