using System.Collections.Concurrent;
using System.Numerics;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Share of active days on which a user (or group) was active around an hour of the week. Counts are
/// smoothed over neighbouring hours with a Gaussian kernel, because with a few months of history each of
/// the 168 hours has only a handful of observations; the hour-of-day profile of the same kind of day
/// (weekday or weekend) backs it up at half weight, so a Tuesday-only habit also covers Wednesday, and the
/// hour-of-day profile over all days at a fifth.
/// </summary>
internal sealed class HourProfile
{
    private readonly double[] _weights;
    private readonly int _reach;
    private readonly double _weightSum;

    // Each profile is stored with `reach` values of wrap-around padding at both ends (the hours before the
    // week's or day's first hour and after its last), so a lookup is three straight runs of multiply-adds
    // over the kernel instead of a modulo per tap: an hour is looked up about ten times per user-day.
    private readonly double[] _weekShare;
    private readonly double[] _weekdayHour;
    private readonly double[] _weekendHour;
    private readonly double[] _anyHour;

    private HourProfile(double[] weights, int reach)
    {
        _weights = weights;
        _reach = reach;
        _weightSum = weights.Sum();
        _weekShare = new double[168 + (2 * reach)];
        _weekdayHour = new double[24 + (2 * reach)];
        _weekendHour = new double[24 + (2 * reach)];
        _anyHour = new double[24 + (2 * reach)];
    }

    /// <summary>A profile of the given counts: each hour's share computed once, then smoothed per lookup.</summary>
    public static HourProfile Of<T>(ReadOnlySpan<T> slots, ReadOnlySpan<T> activeDaysByWeekday, double kernelHours)
        where T : INumber<T>
    {
        var (weights, reach) = Kernel(kernelHours);
        var profile = new HourProfile(weights, reach);
        profile.Fill(slots, activeDaysByWeekday);
        return profile;
    }

    /// <summary>Recomputes the profile in place (one per user, refilled when their day changes).</summary>
    public void Fill<T>(ReadOnlySpan<T> slots, ReadOnlySpan<T> activeDaysByWeekday)
        where T : INumber<T>
    {
        var r = _reach;
        var weekShare = _weekShare.AsSpan(r, 168);
        var weekdayHour = _weekdayHour.AsSpan(r, 24);
        var weekendHour = _weekendHour.AsSpan(r, 24);
        var anyHour = _anyHour.AsSpan(r, 24);
        weekdayHour.Clear();
        weekendHour.Clear();
        anyHour.Clear();
        double weekdayDays = 0, weekendDays = 0;
        for (var d = 0; d < 7; d++)
        {
            var days = double.CreateTruncating(activeDaysByWeekday[d]);
            var weekend = d is (int)DayOfWeek.Saturday or (int)DayOfWeek.Sunday;
            if (weekend)
            {
                weekendDays += days;
            }
            else
            {
                weekdayDays += days;
            }

            var kind = weekend ? weekendHour : weekdayHour;
            for (var h = 0; h < 24; h++)
            {
                var count = double.CreateTruncating(slots[(d * 24) + h]);
                // No active day on this weekday yet is no evidence either way: NaN, filled in below.
                weekShare[(d * 24) + h] = days > 0 ? count / days : double.NaN;
                kind[h] += count;
                anyHour[h] += count;
            }
        }

        var allDays = weekdayDays + weekendDays;
        for (var h = 0; h < 24; h++)
        {
            anyHour[h] = allDays > 0 ? anyHour[h] / allDays : 0;
            weekdayHour[h] = weekdayDays > 0 ? weekdayHour[h] / weekdayDays : anyHour[h];
            weekendHour[h] = weekendDays > 0 ? weekendHour[h] / weekendDays : anyHour[h];
        }

        // A weekday never seen active takes the profile of its kind of day (or of any day), instead of
        // making every one of its hours look rare.
        for (var d = 0; d < 7; d++)
        {
            var kind = d is (int)DayOfWeek.Saturday or (int)DayOfWeek.Sunday ? weekendHour : weekdayHour;
            for (var h = 0; h < 24; h++)
            {
                if (double.IsNaN(weekShare[(d * 24) + h]))
                {
                    weekShare[(d * 24) + h] = kind[h];
                }
            }
        }

        Wrap(_weekShare, 168);
        Wrap(_weekdayHour, 24);
        Wrap(_weekendHour, 24);
        Wrap(_anyHour, 24);
    }

    /// <summary>Fills the padding: the values before the first hour are the last hours, and the other way round.</summary>
    private void Wrap(double[] padded, int length)
    {
        for (var k = 1; k <= _reach; k++)
        {
            padded[_reach - k] = padded[_reach + ((((-k) % length) + length) % length)];
            padded[_reach + length - 1 + k] = padded[_reach + ((k - 1) % length)];
        }
    }

    /// <summary>
    /// Writes the filled profile into a scorer snapshot: it was filled from the counts (a user's, or in learning mode the
    /// peers') as they were when the day first needed it, and is kept as it was for the rest of that day.
    /// </summary>
    public void WriteState(BinaryWriter w)
    {
        foreach (var values in (double[][])[_weekShare, _weekdayHour, _weekendHour, _anyHour])
        {
            w.Write(values.Length);
            foreach (var v in values)
            {
                w.Write(v);
            }
        }
    }

    /// <summary>Reads a profile written by <see cref="WriteState"/> with the policy's kernel.</summary>
    public static HourProfile ReadState(BinaryReader r, double kernelHours)
    {
        var (weights, reach) = Kernel(kernelHours);
        var profile = new HourProfile(weights, reach);
        foreach (var values in (double[][])[profile._weekShare, profile._weekdayHour, profile._weekendHour, profile._anyHour])
        {
            if (r.ReadInt32() != values.Length)
            {
                throw new InvalidDataException("The snapshot's hour profile was made with another kernel width.");
            }

            for (var i = 0; i < values.Length; i++)
            {
                values[i] = r.ReadDouble();
            }
        }

        return profile;
    }

    private static KernelWeights? _kernel;

    private static (double[] Weights, int Reach) Kernel(double kernelHours)
    {
        // One reference, read and written atomically: scorers on several threads may share it.
        if (_kernel is { } cached && cached.Hours == kernelHours)
        {
            return (cached.Weights, cached.Reach);
        }

        var reach = (int)Math.Ceiling(kernelHours * 3);
        var weights = new double[(2 * reach) + 1];
        for (var k = -reach; k <= reach; k++)
        {
            weights[k + reach] = Math.Exp(-(k * k) / (2 * kernelHours * kernelHours));
        }

        _kernel = new KernelWeights(weights, reach, kernelHours);
        return (weights, reach);
    }

    private sealed record KernelWeights(double[] Weights, int Reach, double Hours);

    public double Share(DayOfWeek weekday, int hour)
    {
        // With the padding, slot + k (k = 0 .. 2 x reach) is the slot k - reach hours away, wrapped.
        var slot = ((int)weekday * 24) + hour;
        var kind = weekday is DayOfWeek.Saturday or DayOfWeek.Sunday ? _weekendHour : _weekdayHour;
        var weights = _weights.AsSpan();
        var week = _weekShare.AsSpan(slot, weights.Length);
        var sameKindHours = kind.AsSpan(hour, weights.Length);
        var anyHours = _anyHour.AsSpan(hour, weights.Length);
        double sum = 0, sameKind = 0, any = 0;
        for (var k = 0; k < weights.Length; k++)
        {
            var w = weights[k];
            sum += w * week[k];
            sameKind += w * sameKindHours[k];
            any += w * anyHours[k];
        }

        // Same hour on any day, at a fifth of the weight: a weekday worker's first Saturday morning is
        // unusual but not an odd hour; their first 3 a.m. is both.
        return Math.Max(sum, Math.Max(0.5 * sameKind, 0.2 * any)) / _weightSum;
    }
}

/// <summary>
/// A representative IANA time zone per country (ISO 3166-1 alpha-2), used only to judge whether a
/// travelling user's hour is a normal working hour where they are. Countries spanning several zones map
/// to their most populous one; a country not listed gets no travel adjustment.
/// </summary>
internal static class CountryTimeZones
{
    private static readonly Dictionary<string, string> Zones = new(StringComparer.OrdinalIgnoreCase)
    {
        ["US"] = "America/New_York", ["CA"] = "America/Toronto", ["MX"] = "America/Mexico_City", ["BR"] = "America/Sao_Paulo",
        ["AR"] = "America/Argentina/Buenos_Aires", ["GB"] = "Europe/London", ["IE"] = "Europe/Dublin", ["FR"] = "Europe/Paris",
        ["DE"] = "Europe/Berlin", ["NL"] = "Europe/Amsterdam", ["BE"] = "Europe/Brussels", ["ES"] = "Europe/Madrid",
        ["PT"] = "Europe/Lisbon", ["IT"] = "Europe/Rome", ["CH"] = "Europe/Zurich", ["AT"] = "Europe/Vienna",
        ["SE"] = "Europe/Stockholm", ["NO"] = "Europe/Oslo", ["DK"] = "Europe/Copenhagen", ["FI"] = "Europe/Helsinki",
        ["PL"] = "Europe/Warsaw", ["CZ"] = "Europe/Prague", ["RO"] = "Europe/Bucharest", ["GR"] = "Europe/Athens",
        ["TR"] = "Europe/Istanbul", ["RU"] = "Europe/Moscow", ["UA"] = "Europe/Kyiv", ["IL"] = "Asia/Jerusalem",
        ["AE"] = "Asia/Dubai", ["SA"] = "Asia/Riyadh", ["IN"] = "Asia/Kolkata", ["PK"] = "Asia/Karachi",
        ["SG"] = "Asia/Singapore", ["MY"] = "Asia/Kuala_Lumpur", ["TH"] = "Asia/Bangkok", ["VN"] = "Asia/Ho_Chi_Minh",
        ["ID"] = "Asia/Jakarta", ["PH"] = "Asia/Manila", ["CN"] = "Asia/Shanghai", ["HK"] = "Asia/Hong_Kong",
        ["TW"] = "Asia/Taipei", ["KR"] = "Asia/Seoul", ["JP"] = "Asia/Tokyo", ["AU"] = "Australia/Sydney",
        ["NZ"] = "Pacific/Auckland", ["ZA"] = "Africa/Johannesburg", ["NG"] = "Africa/Lagos", ["EG"] = "Africa/Cairo",
        ["KE"] = "Africa/Nairobi",
    };

    private static readonly ConcurrentDictionary<string, TimeZoneInfo?> Cache = new(StringComparer.OrdinalIgnoreCase);

    public static TimeZoneInfo? Of(string country) => Cache.GetOrAdd(country, static c =>
        Zones.TryGetValue(c, out var id) && TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone) ? zone : null);
}
