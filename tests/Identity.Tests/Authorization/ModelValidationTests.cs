using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using static CrmSecurity.Identity.Tests.Authorization.SampleModel;

namespace CrmSecurity.Identity.Tests.Authorization;

public sealed class ModelValidationTests
{
    [Fact]
    public void A_cycle_in_the_business_unit_tree_is_refused_naming_the_units()
    {
        var builder = Builder();
        builder.AddBusinessUnit(new("a", "A", "b"));
        builder.AddBusinessUnit(new("b", "B", "a"));

        var problems = Problems(builder);

        Assert.Contains(problems, p => p.EndsWith("cycle in the business-unit tree: a -> b -> a", StringComparison.Ordinal));
    }

    [Fact]
    public void Unknown_names_and_duplicates_are_all_reported_at_once()
    {
        var builder = Builder();
        builder.AddRole(new("bad", "Sales manager", "", [new("kontakt", CrmAction.Read, Depth.Own)]));
        builder.AddFieldProfile(new("bad_profile", "Bad", "", [new("contact", "last_name", FieldGrant.Read), new("contact", "nope", FieldGrant.Read)]));
        builder.AddTeam(new("west-deals", "Another", "nowhere", [], ["no_role"], []));
        builder.AddUser(User("u-x", "x", "mars", "u-nobody", ["sales_rep"]));

        var problems = Problems(builder);

        Assert.Contains("role 'bad': duplicate role name 'Sales manager' (also role 'sales_manager')", problems);
        Assert.Contains("role 'bad': unknown entity 'kontakt' in role 'bad'", problems);
        Assert.Contains("field security profile 'bad_profile': field 'contact.last_name' is not secured (only sensitive and secret fields are granted by field security profiles)", problems);
        Assert.Contains("field security profile 'bad_profile': unknown field 'contact.nope' in field security profile 'bad_profile'", problems);
        Assert.Contains("team 'west-deals': duplicate team id 'west-deals'", problems);
        Assert.Contains("user 'x': unknown business unit 'mars'", problems);
        Assert.Contains("user 'x': unknown manager 'u-nobody'", problems);
    }

    [Fact]
    public void A_cycle_of_managers_is_refused()
    {
        var builder = new AuthorizationModelBuilder()
            .AddBusinessUnit(new("root", "Root", null))
            .AddUser(User("u-1", "one", "root", "u-2", []))
            .AddUser(User("u-2", "two", "root", "u-1", []));

        Assert.Contains(Problems(builder), p => p.Contains("cycle in the manager hierarchy", StringComparison.Ordinal));
    }

    [Fact]
    public void Two_root_business_units_are_refused()
    {
        var builder = new AuthorizationModelBuilder()
            .AddBusinessUnit(new("one", "One", null))
            .AddBusinessUnit(new("two", "Two", null));

        Assert.Contains(Problems(builder), p => p.Contains("there are 2 root business units ('one', 'two')", StringComparison.Ordinal));
    }

    [Fact]
    public void An_entity_may_not_take_the_name_of_a_built_in_one()
    {
        var builder = Builder().AddEntity(new("security_role", "Mine", []));

        Assert.Contains(Problems(builder), p => p.EndsWith("duplicate name: 'security_role' is a built-in entity of the service", StringComparison.Ordinal));
    }

    [Fact]
    public void Only_users_whose_decisions_can_change_get_a_new_permission_version()
    {
        var first = Build(version: 1);
        var stored = first.Users.ToDictionary(u => u.Id, u => u.Fingerprint);

        // Give the sales_manager role a new privilege: bob holds it; nobody else does.
        var changed = Rebuild(stored, first, roleChange: true).Build(2);
        var unchanged = Rebuild(stored, first, roleChange: false).Build(2);

        Assert.Equal(2, changed.User(Bob)!.PermVer);
        Assert.Equal(1, changed.User(Alice)!.PermVer);
        Assert.Equal(1, changed.User(Sam)!.PermVer);
        Assert.All(unchanged.Users, user => Assert.Equal(1, user.PermVer));
    }

    private static AuthorizationModelBuilder Rebuild(Dictionary<string, long> stored, AuthorizationSnapshot previous, bool roleChange)
    {
        var builder = new AuthorizationModelBuilder { Organization = previous.Organization };
        foreach (var entity in previous.Entities.Where(e => !e.IsSystem))
        {
            builder.AddEntity(entity.Name == "contact" ? Contact : Opportunity);
        }

        foreach (var unit in previous.BusinessUnits)
        {
            builder.AddBusinessUnit(new(unit.Id, unit.Name, unit.Parent < 0 ? null : previous.BusinessUnits[unit.Parent].Id));
        }

        foreach (var role in previous.Roles)
        {
            builder.AddRole(roleChange && role.Id == "sales_manager"
                ? role.Definition with { Privileges = [.. role.Definition.Privileges, new("opportunity", CrmAction.Read, Depth.Organization)] }
                : role.Definition);
        }

        foreach (var profile in previous.Profiles)
        {
            builder.AddFieldProfile(profile.Definition);
        }

        foreach (var team in previous.Teams)
        {
            builder.AddTeam(new(team.Id, team.Name, previous.BusinessUnits[team.BusinessUnit].Id, [.. team.Members.Select(m => previous.Users[m].Id)],
                [.. team.Roles.Select(r => previous.Roles[r].Id)], [.. team.Profiles.Select(p => previous.Profiles[p].Id)]));
        }

        foreach (var user in previous.Users)
        {
            builder.AddUser(user.Definition with { PermVer = user.PermVer }, stored[user.Id]);
        }

        return builder;
    }

    private static List<string> Problems(AuthorizationModelBuilder builder) =>
        [.. Assert.Throws<ModelValidationException>(() => builder.Build(1)).Problems.Select(p => p.ToString())];
}
