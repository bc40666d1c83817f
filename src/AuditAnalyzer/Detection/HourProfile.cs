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
    private readonly double[] _weekShare = new double[168];
    private readonly double[] _weekdayHour = new double[24];
    private readonly double[] _weekendHour = new double[24];
    private readonly double[] _anyHour = new double[24];

    private HourProfile(double[] weights, int reach)
    {
        _weights = weights;
        _reach = reach;
        _weightSum = weights.Sum();
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
        Array.Clear(_weekdayHour);
        Array.Clear(_weekendHour);
        Array.Clear(_anyHour);
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

            var kind = weekend ? _weekendHour : _weekdayHour;
            for (var h = 0; h < 24; h++)
            {
                var count = double.CreateTruncating(slots[(d * 24) + h]);
                // No active day on this weekday yet is no evidence either way: NaN, filled in below.
                _weekShare[(d * 24) + h] = days > 0 ? count / days : double.NaN;
                kind[h] += count;
                _anyHour[h] += count;
            }
        }

        var allDays = weekdayDays + weekendDays;
        for (var h = 0; h < 24; h++)
        {
            _anyHour[h] = allDays > 0 ? _anyHour[h] / allDays : 0;
            _weekdayHour[h] = weekdayDays > 0 ? _weekdayHour[h] / weekdayDays : _anyHour[h];
            _weekendHour[h] = weekendDays > 0 ? _weekendHour[h] / weekendDays : _anyHour[h];
        }

        // A weekday never seen active takes the profile of its kind of day (or of any day), instead of
        // making every one of its hours look rare.
        for (var d = 0; d < 7; d++)
        {
            var kind = d is (int)DayOfWeek.Saturday or (int)DayOfWeek.Sunday ? _weekendHour : _weekdayHour;
            for (var h = 0; h < 24; h++)
            {
                if (double.IsNaN(_weekShare[(d * 24) + h]))
                {
                    _weekShare[(d * 24) + h] = kind[h];
                }
            }
        }
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
        var slot = ((int)weekday * 24) + hour;
        var kind = weekday is DayOfWeek.Saturday or DayOfWeek.Sunday ? _weekendHour : _weekdayHour;
        double week = 0, sameKind = 0, any = 0;
        for (var k = -_reach; k <= _reach; k++)
        {
            var w = _weights[k + _reach];
            week += w * _weekShare[(((slot + k) % 168) + 168) % 168];
            var h = (((hour + k) % 24) + 24) % 24;
            sameKind += w * kind[h];
            any += w * _anyHour[h];
        }

        // Same hour on any day, at a fifth of the weight: a weekday worker's first Saturday morning is
        // unusual but not an odd hour; their first 3 a.m. is both.
        return Math.Max(week, Math.Max(0.5 * sameKind, 0.2 * any)) / _weightSum;
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
