using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

/// <summary>
/// Mass sharing or reassignment outside one's unit, and mass deletes a few times one's normal, with their look-alikes
/// (a handover inside the unit, an ordinary day of deletes, a new user).
/// </summary>
public sealed class SharingAndDeleteDetectorTests
{
    /// <summary>sam (unit UK) works 30 days, sharing 2 records a day with a colleague and deleting 4, then on day 30 does <paramref name="last"/>.</summary>
    private static Org Sam(Action<Org, DateOnly> last, int historyDays = 30)
    {
        var org = new Org().Peers("p", 12)
            .User("sam", businessUnit: "UK").User("uma", businessUnit: "UK").User("jun", businessUnit: "Japan")
            .User("neo", businessUnit: "UK", hired: Org.Weekday(28));
        for (var d = 0; d < historyDays; d++)
        {
            var date = Org.Weekday(d);
            org.Add("sam", Org.Utc(date, 9), AccessAction.Login);
            org.Add("sam", Org.Utc(date, 10), AccessAction.Share, "opportunity", 2, target: "uma");
            org.Add("sam", Org.Utc(date, 11), AccessAction.Delete, "task", 4);
            if (d % 10 == 0)
            {
                org.Add("sam", Org.Utc(date, 12), AccessAction.Share, "opportunity", 3, target: "jun"); // now and then another unit
            }
        }

        var day = Org.Weekday(historyDays);
        org.Add("sam", Org.Utc(day, 9), AccessAction.Login);
        last(org, day);
        return org;
    }

    [Theory]
    [InlineData("jun", "another unit")]
    [InlineData("ext-4711", "not in the directory")]
    [InlineData("neo", "hired two days before")]
    public void Sharing_sixty_records_outside_the_unit_or_to_a_new_account_is_an_alert(string to, string why)
    {
        var findings = Sam((org, day) =>
        {
            for (var i = 0; i < 6; i++)
            {
                org.Add("sam", Org.Utc(day, 10 + i), i % 2 == 0 ? AccessAction.Share : AccessAction.Assign, "account", 10, target: to);
            }
        }).Score().For("sam").Alerts().ToList();

        var reason = Assert.Single(findings).Reasons.Single(r => r.Code == ReasonCodes.MassSharing);
        Assert.True(reason.Actual > 20, why);
        Assert.Equal(3, reason.Typical); // the other unit's share every tenth day
        Assert.Contains(to, reason.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Handing_two_hundred_records_to_a_colleague_of_the_same_unit_is_no_finding()
    {
        var findings = Sam((org, day) => org.Add("sam", Org.Utc(day, 10), AccessAction.Assign, "account", 200, target: "uma", details: "handover")).Score().For("sam");

        Assert.DoesNotContain(findings, f => f.Detector == DetectorNames.Sharing);
    }

    [Fact]
    public void Deleting_forty_records_ten_times_the_usual_is_an_alert_and_ten_is_not()
    {
        var many = Sam((org, day) =>
        {
            org.Add("sam", Org.Utc(day, 10), AccessAction.Delete, "task", 20);
            org.Add("sam", Org.Utc(day, 11), AccessAction.Delete, "contact", 20);
        }).Score().For("sam").Alerts().ToList();
        var few = Sam((org, day) => org.Add("sam", Org.Utc(day, 10), AccessAction.Delete, "task", 10)).Score().For("sam");

        var reason = Assert.Single(many).Reasons.Single(r => r.Code == ReasonCodes.MassDelete);
        Assert.Equal((4, 40), (reason.Typical, reason.Actual));
        Assert.DoesNotContain(few, f => f.Detector == DetectorNames.MassDelete);
    }

    [Fact]
    public void A_new_user_deleting_or_sharing_is_not_judged_before_they_have_a_normal()
    {
        var findings = Sam((org, day) =>
        {
            org.Add("sam", Org.Utc(day, 10), AccessAction.Delete, "task", 100);
            org.Add("sam", Org.Utc(day, 11), AccessAction.Share, "account", 100, target: "jun");
        }, historyDays: 3).Score().For("sam");

        Assert.DoesNotContain(findings, f => f.Detector is DetectorNames.MassDelete or DetectorNames.Sharing);
    }
}
