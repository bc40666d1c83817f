using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using static CrmSecurity.Identity.Tests.Authorization.SampleModel;

namespace CrmSecurity.Identity.Tests.Authorization;

/// <summary>The decision hot path allocates nothing (speed itself is measured in bench/Identity.Benchmarks).</summary>
public sealed class HotPathTests
{
    [Fact]
    public void A_check_with_field_projection_allocates_nothing()
    {
        var builder = Builder();
        builder.AddShare(new("s-1", "contact", "c-1", PrincipalKind.Team, "west-deals", [CrmAction.Read], RecordBusinessUnit: "east"));
        var model = builder.Build(1);
        ShareRef[] shares = [new(PrincipalKind.Team, "east-team", ActionSets.Of(CrmAction.Read))];
        RecordRef[] records =
        [
            OwnedBy(Alice, "west"),
            OwnedBy(Erin, "east", id: "c-1"),
            new("c-2", Dan, PrincipalKind.User, "east", shares),
            OwnedBy(Alice, "east"),
            new(null, "west-deals", PrincipalKind.Team, "west"),
        ];
        string[] users = [Alice, Bob, Erin, Dan, Sam, Olga];
        var contact = model.EntityIndex("contact");
        var sink = 0;
        void Run()
        {
            foreach (var user in users)
            {
                foreach (var record in records)
                {
                    var decision = model.Check(user, "contact", CrmAction.Read, record);
                    var fields = model.Fields(decision.User, contact);
                    sink += (decision.Allowed ? 1 : 0) + fields.Length;
                }
            }
        }

        Run(); // first calls may allocate once (JIT, statics)
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1_000; i++)
        {
            Run();
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.True(sink > 0);
    }
}
