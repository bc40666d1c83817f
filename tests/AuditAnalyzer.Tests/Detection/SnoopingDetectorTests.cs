using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

/// <summary>
/// Record snooping: many distinct records read one at a time outside the user's book, and its look-alikes (covering
/// for one colleague of another unit, a unit the user works every week, a new user, a source that names no units).
/// </summary>
public sealed class SnoopingDetectorTests
{
    /// <summary>
    /// sam (unit UK) works 30 days reading ~12 of their own unit's contacts a day, two of them in DACH (their book), then
    /// on working day 30 reads <paramref name="reads"/> records chosen by <paramref name="record"/>.
    /// </summary>
    private static Org Reader(int reads, Func<int, (string Id, string? Owner, string? Unit)> record, int historyDays = 30, bool withUnits = true)
    {
        var org = new Org().Peers("p", 12).User("sam", businessUnit: "UK");
        for (var d = 0; d < historyDays; d++)
        {
            var date = Org.Weekday(d);
            org.Add("sam", Org.Utc(date, 9), AccessAction.Login);
            for (var i = 0; i < 12; i++)
            {
                var unit = i < 2 ? "DACH" : "UK";
                org.Add("sam", Org.Utc(date, 9.5 + (i * 0.5)), AccessAction.Read, "contact",
                    record: ($"c-{unit}-{(d * 7) + i}", $"{unit.ToLowerInvariant()}-owner-{i % 4}", withUnits ? unit : null));
            }
        }

        var day = Org.Weekday(historyDays);
        org.Add("sam", Org.Utc(day, 9), AccessAction.Login);
        for (var i = 0; i < reads; i++)
        {
            org.Add("sam", Org.Utc(day, 10 + (i * 4.0 / reads)), AccessAction.Read, "contact", record: record(i));
        }

        return org;
    }

    private static readonly string[] ForeignUnits = ["Japan", "India", "NA-East"];

    private static (string, string?, string?) Browsing(int i) => ($"c-far-{i}", $"owner-{i % 23}", ForeignUnits[i % 3]);

    [Fact]
    public void Reading_eighty_records_of_many_owners_in_other_units_is_an_alert_naming_the_units()
    {
        var finding = Assert.Single(Reader(80, Browsing).Score().For("sam").Alerts());

        var reason = finding.Reasons.Single(r => r.Code == ReasonCodes.RecordsOutsideBook);
        Assert.Equal(ReasonCodes.RecordsOutsideBook, finding.Reasons[0].Code);
        Assert.Contains("India, Japan, NA-East", reason.Text, StringComparison.Ordinal);
        Assert.Equal(DetectorNames.Snooping, finding.Detector);
        Assert.InRange(reason.Actual!.Value, 31, 80);
        Assert.Equal(1, reason.Typical); // DACH's reads of its first three days, before it became their book
        // Evidence: the outside-book reads (the first 20 of the day, and the reads at each step), not the login.
        Assert.InRange(finding.EventIds.Count, 20, 40);
    }

    [Fact]
    public void Covering_for_one_colleague_of_another_unit_is_no_snooping()
    {
        var findings = Reader(60, i => ($"c-cover-{i}", "ana-in-japan", "Japan")).Score().For("sam");

        Assert.DoesNotContain(findings, f => f.Detector == DetectorNames.Snooping);
    }

    [Fact]
    public void Records_of_a_unit_the_user_reads_every_week_are_their_book()
    {
        var findings = Reader(80, i => ($"c-dach-{i}", $"owner-{i % 23}", "DACH")).Score().For("sam");

        Assert.DoesNotContain(findings, f => f.Detector == DetectorNames.Snooping);
    }

    [Fact]
    public void A_new_user_is_not_judged_on_units_before_they_have_a_book()
    {
        var findings = Reader(80, Browsing, historyDays: 3).Score().For("sam");

        Assert.DoesNotContain(findings, f => f.Detector == DetectorNames.Snooping);
    }

    [Fact]
    public void Without_units_many_more_distinct_records_than_ever_is_an_alert_and_a_few_more_is_not()
    {
        (string, string?, string?) Unnamed(int i) => ($"c-any-{i}", null, null);

        var many = Reader(400, Unnamed, withUnits: false).Score().For("sam").Alerts().ToList();
        var few = Reader(30, Unnamed, withUnits: false).Score().For("sam");

        var reason = Assert.Single(many).Reasons.Single(r => r.Code == ReasonCodes.DistinctRecords);
        Assert.Equal(12, reason.Typical);
        Assert.DoesNotContain(few, f => f.Detector == DetectorNames.Snooping);
    }

    [Fact]
    public void Reading_the_same_foreign_record_again_counts_once()
    {
        var findings = Reader(200, i => ($"c-far-{i % 20}", $"owner-{i % 20}", "Japan")).Score().For("sam");

        Assert.DoesNotContain(findings, f => f.Detector == DetectorNames.Snooping);
    }
}
