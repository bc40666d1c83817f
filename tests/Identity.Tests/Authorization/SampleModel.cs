using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;

namespace CrmSecurity.Identity.Tests.Authorization;

/// <summary>
/// A small organisation to test decisions on:
/// <code>
/// root (Organization)
/// └── sales (Sales)
///     ├── west (Sales West)    alice (sales_rep), bob (sales_manager, alice's manager), erin (sales_rep, via team west-deals)
///     └── east (Sales East)    dan (sales_rep)
/// support (Support, under root) sam (support_agent + support_pii profile)
/// </code>
/// </summary>
internal static class SampleModel
{
    public const string Alice = "u-alice";
    public const string Bob = "u-bob";
    public const string Erin = "u-erin";
    public const string Dan = "u-dan";
    public const string Sam = "u-sam";
    public const string Olga = "u-olga";

    public static readonly EntityDefinition Contact = new("contact", "Contact",
    [
        new("last_name", "Last name", Sensitivity.Public),
        new("notes", "Notes", Sensitivity.Internal),
        new("email", "Email", Sensitivity.Sensitive, MaskStyles.Email),
        new("national_id", "National ID", Sensitivity.Secret, MaskStyles.Last4),
    ]);

    public static readonly EntityDefinition Opportunity = new("opportunity", "Opportunity", [new("name", "Topic", Sensitivity.Public)]);

    public static AuthorizationModelBuilder Builder(bool hierarchy = true)
    {
        var builder = new AuthorizationModelBuilder { Organization = new OrganizationSettings("Org", hierarchy, 2) }
            .AddEntity(Contact)
            .AddEntity(Opportunity)
            .AddBusinessUnit(new("root", "Organization", null))
            .AddBusinessUnit(new("sales", "Sales", "root"))
            .AddBusinessUnit(new("west", "Sales West", "sales"))
            .AddBusinessUnit(new("east", "Sales East", "sales"))
            .AddBusinessUnit(new("support", "Support", "root"))
            .AddRole(new("sales_rep", "Sales representative", "",
            [
                new("contact", CrmAction.Read, Depth.Own),
                new("contact", CrmAction.Update, Depth.Own),
                new("opportunity", CrmAction.Read, Depth.BusinessUnit),
            ]))
            .AddRole(new("sales_manager", "Sales manager", "",
            [
                new("contact", CrmAction.Read, Depth.BusinessUnitAndChildren),
                new("contact", CrmAction.Update, Depth.BusinessUnit),
                new("contact", CrmAction.Export, Depth.BusinessUnitAndChildren),
            ]))
            .AddRole(new("support_agent", "Support agent", "", [new("contact", CrmAction.Read, Depth.Organization)]))
            .AddFieldProfile(new("sales_pii", "Sales PII", "", [new("contact", "email", FieldGrant.Update)]))
            .AddFieldProfile(new("support_pii", "Support PII", "",
            [
                new("contact", "email", FieldGrant.ReadUnmasked),
                new("contact", "national_id", FieldGrant.Read),
            ]))
            .AddTeam(new("west-deals", "West deals", "west", [Erin, Alice], ["sales_rep"], ["sales_pii"]))
            .AddUser(User(Alice, "alice", "west", Bob, ["sales_rep"]))
            .AddUser(User(Bob, "bob", "west", Olga, ["sales_manager"]))
            .AddUser(User(Olga, "olga", "sales", null, []))
            .AddUser(User(Erin, "erin", "west", null, []))
            .AddUser(User(Dan, "dan", "east", null, ["sales_rep"]))
            .AddUser(User(Sam, "sam", "support", null, ["support_agent"], ["support_pii"]));
        return builder;
    }

    public static AuthorizationSnapshot Build(long version = 1) => Builder().Build(version);

    public static UserDefinition User(string id, string name, string unit, string? manager, string[] roles, string[]? profiles = null, bool disabled = false) =>
        new(id, name, name[..1].ToUpperInvariant() + name[1..], unit, manager, roles, profiles ?? [], disabled);

    public static RecordRef OwnedBy(string owner, string unit, string? id = null) => new(id, owner, PrincipalKind.User, unit);
}
