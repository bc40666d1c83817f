namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Share of active days on which a user (or group) was active around an hour of the week. Counts are
/// smoothed over neighbouring hours with a Gaussian kernel, because with a few months of history each of
/// the 168 hours has only a handful of observations; the hour-of-day profile of the same kind of day
/// (weekday or weekend) backs it up at half weight, so a Tuesday-only habit also covers Wednesday, and the
/// hour-of-day profile over all days at a fifth.
/// </summary>
internal static class HourProfile
{
    public static double Share(ReadOnlySpan<long> slots, ReadOnlySpan<long> activeDaysByWeekday, DayOfWeek weekday, int hour, double kernelHours)
    {
        var slot = ((int)weekday * 24) + hour;
        double weighted = 0, weights = 0;
        var reach = (int)Math.Ceiling(kernelHours * 3);
        for (var k = -reach; k <= reach; k++)
        {
            var w = Math.Exp(-(k * k) / (2 * kernelHours * kernelHours));
            var s = (((slot + k) % 168) + 168) % 168;
            var days = activeDaysByWeekday[s / 24];
            if (days > 0)
            {
                weighted += w * slots[s] / days;
            }

            weights += w;
        }

        var weekShare = weights == 0 ? 0 : weighted / weights;

        // Same hour on the same kind of day (weekdays / weekend), smoothed the same way.
        var weekend = weekday is DayOfWeek.Saturday or DayOfWeek.Sunday;
        double kindWeighted = 0, kindWeights = 0;
        for (var k = -reach; k <= reach; k++)
        {
            var w = Math.Exp(-(k * k) / (2 * kernelHours * kernelHours));
            var h = (((hour + k) % 24) + 24) % 24;
            long count = 0, days = 0;
            for (var d = 0; d < 7; d++)
            {
                var isWeekend = d is (int)DayOfWeek.Saturday or (int)DayOfWeek.Sunday;
                if (isWeekend != weekend)
                {
                    continue;
                }

                count += slots[(d * 24) + h];
                days += activeDaysByWeekday[d];
            }

            if (days > 0)
            {
                kindWeighted += w * count / days;
            }

            kindWeights += w;
        }

        var kindShare = kindWeights == 0 ? 0 : kindWeighted / kindWeights;

        // Same hour on any day, at a fifth of the weight: a weekday worker's first Saturday morning is
        // unusual but not an odd hour; their first 3 a.m. is both.
        double anyWeighted = 0, anyWeights = 0;
        long allDays = 0;
        for (var d = 0; d < 7; d++)
        {
            allDays += activeDaysByWeekday[d];
        }

        for (var k = -reach; k <= reach && allDays > 0; k++)
        {
            var w = Math.Exp(-(k * k) / (2 * kernelHours * kernelHours));
            var h = (((hour + k) % 24) + 24) % 24;
            long count = 0;
            for (var d = 0; d < 7; d++)
            {
                count += slots[(d * 24) + h];
            }

            anyWeighted += w * count / allDays;
            anyWeights += w;
        }

        var anyShare = anyWeights == 0 ? 0 : anyWeighted / anyWeights;
        return Math.Max(weekShare, Math.Max(0.5 * kindShare, 0.2 * anyShare));
    }

    public static double Share(int[] slots, int[] activeDaysByWeekday, DayOfWeek weekday, int hour, double kernelHours)
    {
        Span<long> s = stackalloc long[168];
        Span<long> d = stackalloc long[7];
        for (var i = 0; i < 168; i++)
        {
            s[i] = slots[i];
        }

        for (var i = 0; i < 7; i++)
        {
            d[i] = activeDaysByWeekday[i];
        }

        return Share(s, d, weekday, hour, kernelHours);
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

    private static readonly Dictionary<string, TimeZoneInfo?> Cache = new(StringComparer.OrdinalIgnoreCase);

    public static TimeZoneInfo? Of(string country)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(country, out var cached))
            {
                return cached;
            }

            TimeZoneInfo? zone = null;
            if (Zones.TryGetValue(country, out var id) && TimeZoneInfo.TryFindSystemTimeZoneById(id, out var found))
            {
                zone = found;
            }

            Cache[country] = zone;
            return zone;
        }
    }
}
