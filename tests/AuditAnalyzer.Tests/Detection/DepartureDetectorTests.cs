using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

/// <summary>
/// Subtle departure: a few times one's own exports in the weeks before a known termination date, and its look-alikes
/// (the same exports with no date, a leaver's ordinary handover, exports long before the date).
/// </summary>
public sealed class DepartureDetectorTests
{
    /// <summary>
    /// 80 working days of ~100 exported records a day, then <paramref name="lastDays"/> working days exporting
    /// <paramref name="perDay"/> a day; the user leaves on <paramref name="terminated"/> (working-day index) if given.
    /// </summary>
    private static Org Leaver(double perDay, int lastDays = 10, int? terminated = 94, bool spike = false)
    {
        var org = new Org().Peers("p", 12, exportRecords: 100, days: 90)
            .User("lea", terminated: terminated is { } t ? Org.Weekday(t) : null);
        org.WorkDays("lea", 80, exportRecords: 100);
        if (spike)
        {
            // Months earlier, one day of twenty times the usual (a one-off list for a colleague), in the organisation's first
            // fortnight, when nothing alerts, so the day stays in her history.
            org.Add("lea", Org.Utc(Org.Weekday(8), 15), AccessAction.Export, "contact", 1900);
        }

        for (var d = 80; d < 80 + lastDays; d++)
        {
            org.Add("lea", Org.Utc(Org.Weekday(d), 9), AccessAction.Login);
            org.Add("lea", Org.Utc(Org.Weekday(d), 11), AccessAction.Read, "contact");
            org.Add("lea", Org.Utc(Org.Weekday(d), 14), AccessAction.Export, "contact", (long)perDay);
        }

        return org;
    }

    [Fact]
    public void Exporting_three_times_ones_normal_in_the_weeks_before_leaving_is_an_alert_naming_the_date()
    {
        var findings = Leaver(perDay: 300).Score().For("lea").Alerts().ToList();

        // Found, and not once a day: a day that alerted leaves the rolling total, so the same exports are not reported again.
        var departures = findings.Where(f => f.HasReason(ReasonCodes.ExportsBeforeLeaving)).ToList();
        Assert.InRange(departures.Count, 1, 2);
        var reason = departures[0].Reasons.Single(r => r.Code == ReasonCodes.ExportsBeforeLeaving);
        Assert.Contains($"termination date {Org.Weekday(94):yyyy-MM-dd}", reason.Text, StringComparison.Ordinal);
        Assert.Contains("their own, from", reason.Text, StringComparison.Ordinal);
        Assert.True(reason.Actual!.Value > 2.5 * reason.Typical!.Value, reason.Text);
    }

    [Fact]
    public void A_spike_day_months_earlier_does_not_hide_weeks_of_taking()
    {
        // Counted in full, the spike makes a nine-day run of about 2,800 in her history, and 1.5 times that is more than the
        // at most 3,150 taken now (2.5 times her own normal, which the spike raised, is about 2,950); one day is not a habit of
        // weeks, so each history day counts at most the third largest.
        var reason = Leaver(perDay: 350, spike: true).Score().For("lea").Alerts().SelectMany(f => f.Reasons).FirstOrDefault(r => r.Code == ReasonCodes.ExportsBeforeLeaving);
        Assert.NotNull(reason);
        Assert.Contains("their own, from", reason.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_exports_with_no_termination_date_raise_no_departure_reason()
    {
        Assert.DoesNotContain(Leaver(perDay: 300, terminated: null).Score().For("lea"), f => f.HasReason(ReasonCodes.ExportsBeforeLeaving));
    }

    [Fact]
    public void A_leavers_handover_of_one_and_a_half_times_normal_is_no_finding()
    {
        Assert.DoesNotContain(Leaver(perDay: 150).Score().For("lea"), f => f.HasReason(ReasonCodes.ExportsBeforeLeaving));
    }

    [Fact]
    public void Exports_long_before_the_termination_date_are_not_judged_as_a_departure()
    {
        // The date is 70 working days (about 100 calendar days) after the exports: outside the 45-day watch.
        Assert.DoesNotContain(Leaver(perDay: 300, terminated: 160).Score().For("lea"), f => f.HasReason(ReasonCodes.ExportsBeforeLeaving));
    }
}
