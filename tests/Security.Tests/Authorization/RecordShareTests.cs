using System.Net;
using System.Text.Json.Serialization;
using CrmSecurity.Security.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using static CrmSecurity.Security.Tests.Authorization.AdminConsole;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// Red-team finding 2: record shares escalated across business units. Share creation was authorised against the
/// <c>record_business_unit</c> the caller sent, but the share was stored and matched by record id only, so a Sales West
/// admin (wade) and a sales manager with no admin right (bob) gave access to Sales East and Finance records by claiming a
/// unit they hold. Now a share is bound to the location it was authorised at and matches a record only where the CRM app
/// places it; nobody shares with themselves or a team they are in; a user's own token cannot declare shares.
/// </summary>
public sealed class RecordShareTests(AdminConsoleHost host) : IClassFixture<AdminConsoleHost>
{
    /// <summary>Records as the CRM app stores them: the truth about where each one is.</summary>
    private static readonly CrmRecord EastContact = new("contact", "c-east-001", "ed", "sales-east");
    private static readonly CrmRecord FinanceAccount = new("account", "acc-fin-001", "frank", "finance");

    [Fact]
    public async Task A_sales_west_admin_who_claims_his_own_unit_for_a_sales_east_record_reaches_nothing_in_sales_east()
    {
        var wade = await host.AdminTokenOf("wade");
        var crm = await CrmDecisionTokenAsync(host);

        var lie = await PostAsync(host, wade, "admin/api/shares", Share(EastContact, "sales-west", "alice", "read", "update", "delete"));
        var truth = await PostAsync(host, wade, "admin/api/shares", Share(EastContact, "sales-east", "alice", "read"));

        // The claim binds the share to Sales West, where wade may share: it says nothing about the real record.
        Assert.Equal(HttpStatusCode.Created, lie.Status);
        foreach (var action in new[] { "read", "update", "delete" })
        {
            var decision = await CheckAsync(host, crm, DemoIds.Of("alice"), EastContact.Entity, action, EastContact.Real);
            Assert.False(decision.Allowed, $"alice may {action} the Sales East contact: {decision}");
        }

        Assert.Equal(HttpStatusCode.Forbidden, truth.Status);
        Assert.Contains("Sales East", truth.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_sales_manager_without_admin_rights_reaches_no_finance_record_by_claiming_a_unit_or_ownership()
    {
        var bob = await host.AdminTokenOf("bob");
        var crm = await CrmDecisionTokenAsync(host);

        var claimedUnit = await PostAsync(host, bob, "admin/api/shares", Share(FinanceAccount, "sales-west", "alice", "read", "update"));
        var claimedOwner = await PostAsync(host, bob, "admin/api/shares", Share(FinanceAccount, "finance", "ed", "read", "update") with { record_owner = DemoIds.Of("bob") });
        var realUnit = await PostAsync(host, bob, "admin/api/shares", Share(FinanceAccount, "finance", "alice", "read"));

        Assert.Equal(HttpStatusCode.Created, claimedUnit.Status);
        Assert.Equal(HttpStatusCode.Created, claimedOwner.Status);
        Assert.Equal(HttpStatusCode.Forbidden, realUnit.Status);
        foreach (var (user, action) in new[] { ("alice", "read"), ("alice", "update"), ("ed", "read"), ("ed", "update") })
        {
            var decision = await CheckAsync(host, crm, DemoIds.Of(user), FinanceAccount.Entity, action, FinanceAccount.Real);
            Assert.False(decision.Allowed, $"{user} may {action} the Finance account: {decision}");
        }
    }

    [Fact]
    public async Task Nobody_shares_a_record_with_themselves_or_with_a_team_they_are_in()
    {
        var bob = await host.AdminTokenOf("bob");
        var wade = await host.AdminTokenOf("wade");

        var self = await PostAsync(host, bob, "admin/api/shares", Share(FinanceAccount, "sales-west", "bob", "read"));
        var ownTeam = await PostAsync(host, bob, "admin/api/shares", Share(FinanceAccount, "sales-west", "west-sales", ["read"], "team"));
        var wadeSelf = await PostAsync(host, wade, "admin/api/shares", Share(EastContact, "sales-west", "wade", "read"));

        Assert.Equal(HttpStatusCode.Forbidden, self.Status);
        Assert.NotEmpty(self.Errors("principal_id"));
        Assert.Equal(HttpStatusCode.Forbidden, ownTeam.Status);
        Assert.NotEmpty(ownTeam.Errors("principal_id"));
        Assert.Equal(HttpStatusCode.Forbidden, wadeSelf.Status);
    }

    [Fact]
    public async Task A_share_without_the_records_business_unit_is_refused_naming_the_field()
    {
        var dave = await host.AdminTokenOf("dave");

        var reply = await PostAsync(host, dave, "admin/api/shares",
            new { entity = "contact", record_id = "c-east-002", principal_kind = "user", principal_id = DemoIds.Of("alice"), actions = new[] { "read" } });

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.NotEmpty(reply.Errors("record_business_unit"));
    }

    [Fact]
    public async Task A_share_by_someone_who_holds_share_over_the_records_real_unit_reaches_it_there_and_nowhere_else()
    {
        var dave = await host.AdminTokenOf("dave");
        var crm = await CrmDecisionTokenAsync(host);
        var record = EastContact with { Id = "c-east-003" };
        var before = await CheckAsync(host, crm, DemoIds.Of("alice"), record.Entity, "read", record.Real);

        var share = await PostAsync(host, dave, "admin/api/shares", Share(record, "sales-east", "alice", "read"));
        var there = await CheckAsync(host, crm, DemoIds.Of("alice"), record.Entity, "read", record.Real);
        var moved = await CheckAsync(host, crm, DemoIds.Of("alice"), record.Entity, "read", (record with { Unit = "finance" }).Real);

        Assert.False(before.Allowed);
        Assert.Equal(HttpStatusCode.Created, share.Status);
        Assert.True(there.Allowed, there.ToString());
        Assert.Equal("share", there.Basis);
        Assert.False(moved.Allowed, moved.ToString());
    }

    [Fact]
    public async Task A_users_own_token_cannot_declare_shares_that_open_a_record_to_them()
    {
        var alice = await Personas.UserTokenAsync(host, "alice", "openid authz.decide");
        var crm = await CrmDecisionTokenAsync(host);
        var withShare = new
        {
            id = EastContact.Id,
            owner = DemoIds.Of("ed"),
            business_unit = EastContact.Unit,
            shares = new[] { new { principal = DemoIds.Of("alice"), kind = "user", actions = new[] { "read", "update" } } },
        };

        var forged = await CheckAsync(host, alice, DemoIds.Of("alice"), "contact", "update", withShare);
        var fromApp = await CheckAsync(host, crm, DemoIds.Of("alice"), "contact", "update", withShare);

        Assert.Equal(HttpStatusCode.Forbidden, forged.Status);
        Assert.NotEmpty(forged.Errors("record.shares"));
        Assert.True(fromApp.Allowed, fromApp.ToString()); // the CRM app's own share table is trusted
        Assert.Equal("share", fromApp.Basis);
    }

    /// <summary>
    /// The invariant of the issue, over random sequences of share calls by every kind of caller with random claims about
    /// the record (unit, owner), random recipients and actions: afterwards, a user reaches a record through a share only if
    /// a grant to them (or a team of theirs) was made by someone who, at that moment, held <c>share</c> and the action over
    /// the record's real location; and no call shares a record with its caller or a team the caller is in.
    /// </summary>
    [Property(MaxTest = 15, Arbitrary = [typeof(ShareCalls)])]
    public void No_sequence_of_share_calls_reaches_a_record_unless_someone_holding_share_over_its_real_location_granted_it(ShareCall[] calls) =>
        Task.Run(() => RunAsync(calls)).GetAwaiter().GetResult();

    private static readonly List<Grant> Ledger = [];

    private async Task RunAsync(ShareCall[] calls)
    {
        var crm = await CrmDecisionTokenAsync(host);
        foreach (var call in calls)
        {
            var granter = ShareCalls.Granters[call.Granter];
            var record = ShareCalls.Records[call.Record];
            var principal = ShareCalls.Principals[call.Principal];
            var actions = ShareCalls.ActionSets[call.Actions];

            // What the granter may do to the record where it really is, asked before the call (the oracle).
            var entitled = true;
            foreach (var action in actions.Prepend("share").Distinct())
            {
                entitled &= (await CheckAsync(host, crm, DemoIds.Of(granter), record.Entity, action, record.Real)).Allowed;
            }

            var claimedOwner = ShareCalls.ClaimedOwners[call.ClaimedOwner] switch
            {
                "(granter)" => granter,
                "(real)" => record.Owner,
                var other => other,
            };
            var body = Share(record, ShareCalls.ClaimedUnits[call.ClaimedUnit], principal.Name, actions, principal.Kind) with
            {
                record_owner = claimedOwner is null ? null : DemoIds.Of(claimedOwner),
            };
            var reply = await PostAsync(host, await host.AdminTokenOf(granter), "admin/api/shares", body);
            Assert.True(reply.Status is HttpStatusCode.Created or HttpStatusCode.Forbidden or HttpStatusCode.Conflict, $"{call}: {reply}");
            if (reply.Status == HttpStatusCode.Created)
            {
                Assert.False(principal.Includes(granter), $"{granter} shared {record.Id} with {principal.Name}, which includes {granter}");
                lock (Ledger)
                {
                    Ledger.Add(new Grant(record.Id, principal, actions, entitled));
                }
            }
        }

        foreach (var record in ShareCalls.Records)
        {
            foreach (var user in ShareCalls.Users)
            {
                foreach (var action in new[] { "read", "update", "delete", "share" })
                {
                    var decision = await CheckAsync(host, crm, DemoIds.Of(user), record.Entity, action, record.Real);
                    if (!decision.Allowed || decision.Basis != "share")
                    {
                        continue;
                    }

                    bool explained;
                    lock (Ledger)
                    {
                        explained = Ledger.Exists(g => g.RecordId == record.Id && g.Entitled && g.Principal.Includes(user) && g.Actions.Contains(action));
                    }

                    Assert.True(explained, $"{user} may {action} {record.Entity} {record.Id} in {record.Unit} through a share nobody entitled granted: {decision}");
                }
            }
        }
    }

    private static ShareRequest Share(CrmRecord record, string claimedUnit, string principal, params string[] actions) =>
        Share(record, claimedUnit, principal, actions, "user");

    private static ShareRequest Share(CrmRecord record, string claimedUnit, string principal, string[] actions, string kind) => new(
        record.Entity, record.Id, claimedUnit, kind, kind == "user" ? DemoIds.Of(principal) : principal, actions);

    /// <summary>The admin API's share body (snake_case as on the wire).</summary>
#pragma warning disable IDE1006 // JSON member names as the API spells them
    private sealed record ShareRequest(
        string entity,
        string record_id,
        string record_business_unit,
        string principal_kind,
        string principal_id,
        string[] actions,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? record_owner = null);
#pragma warning restore IDE1006

    private sealed record Grant(string RecordId, Principal Principal, string[] Actions, bool Entitled);
}

/// <summary>A record where the CRM app keeps it: entity, id, owner (a demo user) and business unit.</summary>
public sealed record CrmRecord(string Entity, string Id, string Owner, string Unit)
{
    /// <summary>The record as the CRM app sends it to the decision API.</summary>
    public object Real => new { id = Id, owner = DemoIds.Of(Owner), business_unit = Unit };
}

/// <summary>A share recipient: a demo user, or a demo team with its members.</summary>
public sealed record Principal(string Name, string Kind, string[] Members)
{
    public bool Includes(string user) => Kind == "user" ? Name == user : Members.Contains(user);
}

/// <summary>One generated share call, as indexes into <see cref="ShareCalls"/>' tables.</summary>
public sealed record ShareCall(int Granter, int Record, int ClaimedUnit, int ClaimedOwner, int Principal, int Actions);

/// <summary>Random sequences of share calls over the demo organisation (FsCheck arbitrary, shrinking by dropping calls).</summary>
public static class ShareCalls
{
    public static readonly string[] Granters = ["wade", "bob", "alice", "ed", "dave", "frank"];

    public static readonly string[] Users = ["alice", "bob", "ed", "wade", "frank", "dave", "grace", "erin"];

    /// <summary>Records of the property alone (no other test shares them), in Sales East, Finance and Sales West.</summary>
    public static readonly CrmRecord[] Records =
    [
        new("contact", "prop-c-east", "ed", "sales-east"),
        new("account", "prop-a-fin", "frank", "finance"),
        new("contact", "prop-c-west", "alice", "sales-west"),
        new("opportunity", "prop-o-east", "ed", "sales-east"),
    ];

    public static readonly string[] ClaimedUnits = ["sales", "sales-west", "sales-east", "finance", "support"];

    /// <summary>No owner, the caller, the real owner, or someone else.</summary>
    public static readonly string?[] ClaimedOwners = [null, "(granter)", "(real)", "ed", "frank"];

    public static readonly Principal[] Principals =
    [
        new("alice", "user", []), new("bob", "user", []), new("ed", "user", []), new("wade", "user", []),
        new("frank", "user", []), new("grace", "user", []),
        new("west-sales", "team", ["alice", "bob"]), new("east-sales", "team", ["ed"]),
    ];

    public static readonly string[][] ActionSets = [["read"], ["update"], ["read", "update"], ["read", "delete"], ["share"], ["read", "update", "delete", "share"]];

    public static Arbitrary<ShareCall[]> Calls()
    {
        var call = from granter in Gen.Choose(0, Granters.Length - 1)
                   from record in Gen.Choose(0, Records.Length - 1)
                   from unit in Gen.Choose(0, ClaimedUnits.Length - 1)
                   from owner in Gen.Choose(0, ClaimedOwners.Length - 1)
                   from principal in Gen.Choose(0, Principals.Length - 1)
                   from actions in Gen.Choose(0, ActionSets.Length - 1)
                   select new ShareCall(granter, record, unit, owner, principal, actions);
        return Arb.From(
            Gen.Choose(1, 6).SelectMany(length => call.ArrayOf(length)),
            calls => Enumerable.Range(0, calls.Length).Select(i => calls.Where((_, j) => j != i).ToArray()));
    }
}
