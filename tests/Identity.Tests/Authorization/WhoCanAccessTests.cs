using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using static CrmSecurity.Identity.Tests.Authorization.SampleModel;

namespace CrmSecurity.Identity.Tests.Authorization;

public sealed class WhoCanAccessTests
{
    [Fact]
    public void Who_can_read_an_entity_lists_each_user_with_every_granting_role_path()
    {
        var builder = Builder();
        builder.AddTeam(new("readers", "Readers", "west", [Erin], ["support_agent"], []));
        var model = builder.Build(1);

        var grants = model.WhoCanAccessEntity(model.EntityIndex("contact"), CrmAction.Read).ToDictionary(g => g.User.UserName);

        Assert.Equal(["alice", "bob", "dan", "erin", "sam"], grants.Keys.Order());
        Assert.Equal("organization", grants["erin"].Access);
        Assert.Equal(
            ["role 'Support agent' (via team 'Readers') at organization depth", "role 'Sales representative' (via team 'West deals') at own depth"],
            grants["erin"].Paths.Select(p => p.Text).Order().Reverse());
        Assert.Equal("role", grants["sam"].Paths.Single().Kind);
    }

    [Fact]
    public void Who_can_see_a_secured_field_names_the_field_security_profile_and_the_team()
    {
        var model = Build();
        var email = model.Entity("contact")!.FieldIndex["email"];

        var grants = model.WhoCanAccessField(email).ToDictionary(g => g.User.UserName);

        Assert.Equal(["alice", "erin", "sam"], grants.Keys.Order());
        Assert.Equal("update", grants["alice"].Access);
        Assert.Contains(grants["alice"].Paths, p => p.Kind == "field_profile_via_team" && p.Text == "field security profile 'Sales PII' (via team 'West deals') grants update");
        Assert.Equal("read", grants["sam"].Access);
    }

    [Fact]
    public void Who_can_read_one_record_includes_owner_unit_hierarchy_and_share_paths()
    {
        var model = Build();
        ShareRef[] shares = [new(PrincipalKind.User, Erin, ActionSets.Of(CrmAction.Read))];
        var record = new RecordRef("c-1", Alice, PrincipalKind.User, "east", shares);

        var grants = model.WhoCanAccessRecord(model.EntityIndex("contact"), CrmAction.Read, record).ToDictionary(g => g.User.UserName, g => g.Paths.Single());

        Assert.Equal(["alice", "bob", "erin", "sam"], grants.Keys.Order());
        Assert.Equal("owner", grants["alice"].Kind);
        Assert.Equal("hierarchy", grants["bob"].Kind);
        Assert.Equal("share", grants["erin"].Kind);
        Assert.Equal("role", grants["sam"].Kind);
    }
}
