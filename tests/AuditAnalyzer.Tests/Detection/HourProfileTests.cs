using CrmSecurity.AuditAnalyzer.Detection;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

public sealed class HourProfileTests
{
    [Theory]
    [InlineData(1.5, 1)]
    [InlineData(0.5, 2)]
    [InlineData(4, 3)]
    [InlineData(10, 4)] // a kernel reaching further than a day: the padding wraps more than once
    public void Shares_equal_the_kernel_smoothed_definition_at_every_hour_of_the_week(double kernelHours, int seed)
    {
        var random = new Random(seed);
        var activeDays = new int[7];
        var slots = new int[168];
        for (var d = 0; d < 7; d++)
        {
            // Some weekdays never seen active: their hours fall back to the profile of their kind of day.
            activeDays[d] = random.Next(3) == 0 ? 0 : random.Next(1, 30);
            for (var h = 0; h < 24; h++)
            {
                slots[(d * 24) + h] = activeDays[d] == 0 ? 0 : random.Next(activeDays[d] + 1);
            }
        }

        var profile = HourProfile.Of<int>(slots, activeDays, kernelHours);

        for (var slot = 0; slot < 168; slot++)
        {
            Assert.Equal(Reference(slots, activeDays, kernelHours, slot), profile.Share((DayOfWeek)(slot / 24), slot % 24));
        }
    }

    [Fact]
    public void Refilling_a_profile_gives_the_shares_of_the_new_counts()
    {
        var slots = new int[168];
        var activeDays = new int[7];
        var profile = HourProfile.Of<int>(slots, activeDays, 1.5);
        activeDays[(int)DayOfWeek.Tuesday] = 10;
        slots[((int)DayOfWeek.Tuesday * 24) + 3] = 10;

        profile.Fill<int>(slots, activeDays);

        Assert.Equal(Reference(slots, activeDays, 1.5, ((int)DayOfWeek.Tuesday * 24) + 3), profile.Share(DayOfWeek.Tuesday, 3));
        Assert.InRange(profile.Share(DayOfWeek.Tuesday, 3), 0.2, 1); // was 0 before the refill
    }

    /// <summary>The definition written out plainly: a Gaussian over +-3 sigma of neighbouring hours, wrapping round the week and the day.</summary>
    private static double Reference(int[] slots, int[] activeDays, double kernelHours, int slot)
    {
        double Share(int s)
        {
            var d = s / 24;
            if (activeDays[d] > 0)
            {
                return (double)slots[s] / activeDays[d];
            }

            return KindShare(d is 0 or 6, s % 24);
        }

        double KindShare(bool weekend, int h)
        {
            var days = Enumerable.Range(0, 7).Where(d => (d is 0 or 6) == weekend).Sum(d => (double)activeDays[d]);
            return days > 0
                ? Enumerable.Range(0, 7).Where(d => (d is 0 or 6) == weekend).Sum(d => (double)slots[(d * 24) + h]) / days
                : AnyShare(h);
        }

        double AnyShare(int h)
        {
            var days = activeDays.Sum(d => (double)d);
            return days > 0 ? Enumerable.Range(0, 7).Sum(d => (double)slots[(d * 24) + h]) / days : 0;
        }

        var reach = (int)Math.Ceiling(kernelHours * 3);
        var hour = slot % 24;
        var weekend = slot / 24 is 0 or 6;
        double week = 0, sameKind = 0, any = 0, weights = 0;
        for (var k = -reach; k <= reach; k++)
        {
            var w = Math.Exp(-(k * k) / (2 * kernelHours * kernelHours));
            weights += w;
            week += w * Share((((slot + k) % 168) + 168) % 168);
            var h = (((hour + k) % 24) + 24) % 24;
            sameKind += w * KindShare(weekend, h);
            any += w * AnyShare(h);
        }

        return Math.Max(week, Math.Max(0.5 * sameKind, 0.2 * any)) / weights;
    }
}
