using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using static CrmSecurity.Identity.Tests.Authorization.SampleModel;

namespace CrmSecurity.Identity.Tests.Authorization;

public sealed class DecisionTests
{
    private readonly AuthorizationSnapshot _model = Build();

    [Fact]
    public void Access_is_denied_when_no_role_grants_the_action()
    {
        var decision = _model.Check(Alice, "contact", CrmAction.Delete, OwnedBy(Alice, "west"));
        var explained = _model.Explain(decision, OwnedBy(Alice, "west"));

        Assert.False(decision.Allowed);
        Assert.Equal("no_privilege", explained.Basis);
        Assert.Equal("Denied: no role of alice grants delete on contact; without the privilege, shares and the manager hierarchy do not apply.", explained.Reason);
    }

    [Fact]
    public void Own_depth_allows_the_owner_and_names_the_role_but_denies_a_colleagues_record()
    {
        var own = _model.Check(Alice, "contact", CrmAction.Update, OwnedBy(Alice, "west"));
        var colleagues = OwnedBy(Erin, "west");
        var other = _model.Check(Alice, "contact", CrmAction.Update, colleagues);
        var explained = _model.Explain(other, colleagues);

        Assert.True(own.Allowed);
        Assert.Equal(DecisionBasis.Owner, own.Basis);
        Assert.Equal("Allowed: alice owns the record; role 'Sales representative' grants update on contact at own depth.", _model.Explain(own, OwnedBy(Alice, "west")).Reason);
        Assert.False(other.Allowed);
        Assert.Equal("outside_depth", explained.Basis);
        Assert.Equal("sales_rep", explained.Role!.Id);
        Assert.Contains("the record is owned by erin in 'Sales West', outside that depth", explained.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Business_unit_depth_covers_the_unit_but_not_a_unit_below_it()
    {
        var sameUnit = _model.Check(Bob, "contact", CrmAction.Update, OwnedBy(Erin, "west"));
        var parentUnit = _model.Check(Olga, "contact", CrmAction.Update, OwnedBy(Erin, "west"));

        Assert.True(sameUnit.Allowed);
        Assert.Equal(Depth.BusinessUnit, sameUnit.Depth);
        Assert.False(parentUnit.Allowed);
    }

    [Fact]
    public void Business_unit_and_children_depth_reaches_down_the_tree_and_never_up_or_sideways()
    {
        var model = Builder().Build(1);

        // bob (sales_manager, read at business_unit_and_children) sits in 'west': west is his, sales is above, east beside.
        Assert.True(model.Check(Bob, "contact", CrmAction.Read, OwnedBy(Erin, "west")).Allowed);
        Assert.False(model.Check(Bob, "contact", CrmAction.Read, OwnedBy(Olga, "sales")).Allowed);
        Assert.False(model.Check(Bob, "contact", CrmAction.Read, OwnedBy(Dan, "east")).Allowed);
    }

    [Fact]
    public void A_manager_in_a_parent_unit_reads_the_records_of_every_unit_below()
    {
        var builder = Builder();
        builder.AddUser(User("u-maya", "maya", "sales", null, ["sales_manager"]));
        var model = builder.Build(1);

        var west = model.Check("u-maya", "contact", CrmAction.Read, OwnedBy(Erin, "west"));
        var support = model.Check("u-maya", "contact", CrmAction.Read, OwnedBy(Sam, "support"));

        Assert.True(west.Allowed);
        Assert.Equal("Allowed: role 'Sales manager' grants read on contact at business_unit_and_children depth; the record's business unit 'Sales West' is 'Sales' or below it.",
            model.Explain(west, OwnedBy(Erin, "west")).Reason);
        Assert.False(support.Allowed);
    }

    [Fact]
    public void Organization_depth_allows_every_record()
    {
        var decision = _model.Check(Sam, "contact", CrmAction.Read, OwnedBy(Dan, "east"));

        Assert.True(decision.Allowed);
        Assert.Equal(Depth.Organization, decision.Depth);
    }

    [Fact]
    public void A_role_held_through_a_team_is_explained_with_the_team()
    {
        var decision = _model.Check(Erin, "opportunity", CrmAction.Read, OwnedBy(Alice, "west"));
        var explained = _model.Explain(decision, OwnedBy(Alice, "west"));

        Assert.True(decision.Allowed);
        Assert.Equal("west-deals", explained.ViaTeam!.Id);
        Assert.Contains("role 'Sales representative' (via team 'West deals') grants read on opportunity at business_unit depth", explained.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Access_is_the_union_of_direct_and_team_roles_with_the_deepest_privilege_winning()
    {
        var builder = Builder();
        builder.AddTeam(new("managers", "Managers", "west", [Alice], ["sales_manager"], []));
        var model = builder.Build(1);

        var decision = model.Check(Alice, "contact", CrmAction.Read, OwnedBy(Erin, "west"));

        Assert.True(decision.Allowed);
        Assert.Equal(Depth.BusinessUnitAndChildren, decision.Depth);
        Assert.Equal("managers", model.Explain(decision, OwnedBy(Erin, "west")).ViaTeam!.Id);
    }

    [Fact]
    public void A_share_to_a_team_grants_only_the_shared_actions_and_is_named()
    {
        ShareRef[] shares = [new(PrincipalKind.Team, "west-deals", ActionSets.Of(CrmAction.Read))];
        var record = new RecordRef("c-1", Dan, PrincipalKind.User, "east", shares);

        var read = _model.Check(Alice, "contact", CrmAction.Read, record);
        var update = _model.Check(Alice, "contact", CrmAction.Update, record);
        var explained = _model.Explain(read, record);

        Assert.True(read.Allowed);
        Assert.Equal("share", explained.Basis);
        Assert.Equal("west-deals", explained.Share!.Principal);
        Assert.StartsWith("Allowed: the record is shared with team 'West deals' (alice is a member) for read", explained.Reason, StringComparison.Ordinal);
        Assert.False(update.Allowed);
    }

    [Fact]
    public void A_share_gives_nothing_to_a_user_without_the_privilege()
    {
        ShareRef[] shares = [new(PrincipalKind.User, Olga, ActionSets.Of(CrmAction.Read))];

        var decision = _model.Check(Olga, "contact", CrmAction.Read, new RecordRef("c-1", Dan, PrincipalKind.User, "east", shares));

        Assert.False(decision.Allowed);
        Assert.Equal(DecisionBasis.NoPrivilege, decision.Basis);
    }

    [Fact]
    public void A_share_stored_in_the_model_applies_by_record_id_where_it_was_shared()
    {
        var builder = Builder();
        builder.AddShare(new("s-1", "contact", "c-42", PrincipalKind.User, Alice, [CrmAction.Read, CrmAction.Update], RecordBusinessUnit: "east"));
        var model = builder.Build(1);

        var shared = model.Check(Alice, "contact", CrmAction.Update, OwnedBy(Dan, "east", id: "c-42"));
        var another = model.Check(Alice, "contact", CrmAction.Update, OwnedBy(Dan, "east", id: "c-43"));
        var elsewhere = model.Check(Alice, "contact", CrmAction.Update, OwnedBy(Dan, "sales", id: "c-42"));

        Assert.True(shared.Allowed);
        Assert.True(shared.IsStoredShare);
        Assert.False(another.Allowed);
        Assert.False(elsewhere.Allowed);
    }

    [Fact]
    public void A_share_without_a_location_grants_nothing()
    {
        var builder = Builder();
        builder.AddShare(new("s-1", "contact", "c-42", PrincipalKind.User, Alice, [CrmAction.Read, CrmAction.Update]));
        var model = builder.Build(1);

        Assert.False(model.Check(Alice, "contact", CrmAction.Update, OwnedBy(Dan, "east", id: "c-42")).Allowed);
    }

    [Fact]
    public void A_share_granted_through_ownership_applies_only_while_that_owner_owns_the_record()
    {
        var builder = Builder();
        builder.AddShare(new("s-1", "contact", "c-42", PrincipalKind.User, Alice, [CrmAction.Update], RecordBusinessUnit: "east", RecordOwner: Dan));
        var model = builder.Build(1);

        Assert.True(model.Check(Alice, "contact", CrmAction.Update, OwnedBy(Dan, "east", id: "c-42")).Allowed);
        Assert.False(model.Check(Alice, "contact", CrmAction.Update, OwnedBy(Erin, "east", id: "c-42")).Allowed);
    }

    [Fact]
    public void Members_of_a_team_that_owns_a_record_have_their_own_depth_on_it()
    {
        var record = new RecordRef(null, "west-deals", PrincipalKind.Team, "east");

        var member = _model.Check(Alice, "contact", CrmAction.Update, record);
        var outsider = _model.Check(Dan, "contact", CrmAction.Update, record);

        Assert.True(member.Allowed);
        Assert.Contains("team 'West deals', which alice is a member of, owns the record", _model.Explain(member, record).Reason, StringComparison.Ordinal);
        Assert.False(outsider.Allowed);
    }

    [Fact]
    public void Managers_read_their_reports_records_up_to_the_hierarchy_depth_but_do_not_update_them()
    {
        var aliceRecord = OwnedBy(Alice, "east"); // outside bob's and olga's units
        var bobReads = _model.Check(Bob, "contact", CrmAction.Read, aliceRecord);
        var bobUpdates = _model.Check(Bob, "contact", CrmAction.Update, aliceRecord);
        var withoutHierarchy = Builder(hierarchy: false).Build(1).Check(Bob, "contact", CrmAction.Read, aliceRecord);

        Assert.True(bobReads.Allowed);
        Assert.Equal(DecisionBasis.Hierarchy, bobReads.Basis);
        Assert.Equal("Allowed: bob manages alice (1 level up), who owns the record; managers read their reports' records (hierarchy depth 2).", _model.Explain(bobReads, aliceRecord).Reason);
        Assert.False(bobUpdates.Allowed);
        Assert.False(withoutHierarchy.Allowed);
    }

    [Fact]
    public void A_disabled_user_is_denied_everything_and_sees_no_field()
    {
        var builder = Builder();
        builder.AddUser(User("u-gone", "gone", "support", null, ["support_agent"], disabled: true));
        var model = builder.Build(1);
        var user = model.UserIndex("u-gone");

        Assert.Equal(DecisionBasis.DisabledUser, model.Check("u-gone", "contact", CrmAction.Read, OwnedBy(Dan, "east")).Basis);
        Assert.All(model.Fields(user, model.EntityIndex("contact")).ToArray(), access => Assert.Equal(FieldAccess.Hidden, access));
    }

    [Fact]
    public void Unknown_users_and_entities_are_denied_and_say_so()
    {
        Assert.Equal(DecisionBasis.UnknownUser, _model.Check("nobody", "contact", CrmAction.Read, default).Basis);
        Assert.Equal(DecisionBasis.UnknownEntity, _model.Check(Alice, "kontakt", CrmAction.Read, default).Basis);
    }

    [Fact]
    public void Fields_follow_the_record_unless_secured_then_the_field_security_profile_decides()
    {
        var contact = _model.EntityIndex("contact");

        // alice: read+update own contacts; sales_pii via team grants email update; national_id not granted.
        Assert.Equal([FieldAccess.Update, FieldAccess.Update, FieldAccess.Update, FieldAccess.Hidden], _model.Fields(_model.UserIndex(Alice), contact).ToArray());
        // sam: read only (no update privilege); support_pii: email read_unmasked, national_id read (masked).
        Assert.Equal([FieldAccess.Read, FieldAccess.Read, FieldAccess.Read, FieldAccess.Masked], _model.Fields(_model.UserIndex(Sam), contact).ToArray());
        // olga: no privilege on contact at all: everything hidden.
        Assert.Equal([FieldAccess.Hidden, FieldAccess.Hidden, FieldAccess.Hidden, FieldAccess.Hidden], _model.Fields(_model.UserIndex(Olga), contact).ToArray());
    }

    [Fact]
    public void The_list_filter_names_the_units_owners_and_shared_records_a_user_may_see()
    {
        var builder = Builder();
        builder.AddUser(User("u-maya", "maya", "sales", null, ["sales_manager"]));
        builder.AddShare(new("s-1", "contact", "c-9", PrincipalKind.Team, "west-deals", [CrmAction.Read], RecordBusinessUnit: "east"));
        var model = builder.Build(1);
        var contact = model.EntityIndex("contact");

        var maya = model.Filter(model.UserIndex("u-maya"), contact, CrmAction.Read);
        var alice = model.Filter(model.UserIndex(Alice), contact, CrmAction.Read);
        var bob = model.Filter(model.UserIndex(Bob), contact, CrmAction.Read);
        var olga = model.Filter(model.UserIndex(Olga), contact, CrmAction.Read);

        Assert.Equal(["sales", "west", "east"], maya.BusinessUnits);
        Assert.Empty(alice.BusinessUnits);
        Assert.Equal([Alice, "west-deals"], alice.Owners);
        Assert.Equal([("c-9", "east")], alice.SharedRecords.Select(r => (r.RecordId, r.BusinessUnit)));
        Assert.Contains(Alice, bob.Owners); // bob manages alice
        Assert.True(olga.None);
        Assert.True(model.Filter(model.UserIndex(Sam), contact, CrmAction.Read).All);
    }
}
