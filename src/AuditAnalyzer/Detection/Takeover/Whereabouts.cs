namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Where a user last was: the country and time of their latest event that named one. Kept in memory per user while
/// scoring (a restart loses only the last position, and with it at most one comparison).
/// </summary>
internal sealed class Whereabouts
{
    public string? Country { get; private set; }

    public long Ticks { get; private set; }

    public string? EventId { get; private set; }

    /// <summary>The visit under way to a country the user had never worked from, or null.</summary>
    public Visit? Away { get; set; }

    /// <summary>Writes the last position and the visit under way into a scorer snapshot.</summary>
    public void WriteState(BinaryWriter w)
    {
        w.Write(Country is not null);
        w.Write(Country ?? "");
        w.Write(Ticks);
        w.Write(EventId is not null);
        w.Write(EventId ?? "");
        w.Write(Away is not null);
        if (Away is { } visit)
        {
            w.Write(visit.Country);
            w.Write(visit.Home);
            w.Write(visit.LeftHomeTicks);
            w.Write(visit.FirstTicks);
            w.Write(visit.LastTicks);
            w.Write(visit.RecordsAtNight);
            w.Write(visit.Exported);
            w.Write(visit.Evidence.Count);
            foreach (var id in visit.Evidence)
            {
                w.Write(id);
            }
        }
    }

    /// <summary>Reads what <see cref="WriteState"/> wrote.</summary>
    public static Whereabouts ReadState(BinaryReader r)
    {
        var hasCountry = r.ReadBoolean();
        var country = r.ReadString();
        var where = new Whereabouts { Country = hasCountry ? country : null, Ticks = r.ReadInt64() };
        var hasEvent = r.ReadBoolean();
        var eventId = r.ReadString();
        where.EventId = hasEvent ? eventId : null;
        if (r.ReadBoolean())
        {
            var visit = new Visit(r.ReadString(), r.ReadString(), r.ReadInt64(), r.ReadInt64())
            {
                LastTicks = r.ReadInt64(),
                RecordsAtNight = r.ReadDouble(),
                Exported = r.ReadDouble(),
            };
            for (var i = r.ReadInt32(); i > 0; i--)
            {
                visit.Evidence.Add(r.ReadString());
            }

            where.Away = visit;
        }

        return where;
    }

    public void Saw(string country, long ticks, string eventId)
    {
        Country = country;
        Ticks = ticks;
        EventId = eventId;
    }
}

/// <summary>
/// A stay in a country the user had never worked from, begun within hours of activity from a country they work from.
/// What it touched at hours the user does not work at home is counted: a stolen session is used while its owner sleeps.
/// </summary>
internal sealed class Visit(string country, string home, long leftHomeTicks, long firstTicks)
{
    public string Country { get; } = country;

    /// <summary>The familiar country the user was in before.</summary>
    public string Home { get; } = home;

    /// <summary>The last event from <see cref="Home"/> before the visit.</summary>
    public long LeftHomeTicks { get; } = leftHomeTicks;

    public long FirstTicks { get; } = firstTicks;

    public long LastTicks { get; set; } = firstTicks;

    /// <summary>Records searched, listed, read or exported during the visit at hours rare for the user at home.</summary>
    public double RecordsAtNight { get; set; }

    public double Exported { get; set; }

    /// <summary>The visit's events that touched data at those hours (at most 20).</summary>
    public List<string> Evidence { get; } = [];
}

/// <summary>
/// An approximate centre per country (ISO 3166-1 alpha-2; the most populous region for large countries), for the distance
/// between two sign-in places. Country-level only: two events in one country are never impossible travel, and a country
/// not listed is never compared.
/// </summary>
internal static class CountryPlaces
{
    private static readonly Dictionary<string, (double Lat, double Lon)> Places = new(StringComparer.OrdinalIgnoreCase)
    {
        ["US"] = (39.8, -98.6), ["CA"] = (45.4, -75.7), ["MX"] = (19.4, -99.1), ["BR"] = (-23.5, -46.6), ["AR"] = (-34.6, -58.4),
        ["GB"] = (52.5, -1.5), ["IE"] = (53.3, -7.7), ["FR"] = (46.6, 2.4), ["DE"] = (51.2, 10.4), ["NL"] = (52.2, 5.3),
        ["BE"] = (50.6, 4.6), ["ES"] = (40.2, -3.7), ["PT"] = (39.6, -8.0), ["IT"] = (42.8, 12.6), ["CH"] = (46.8, 8.2),
        ["AT"] = (47.6, 14.1), ["SE"] = (59.3, 18.1), ["NO"] = (59.9, 10.8), ["DK"] = (55.7, 10.0), ["FI"] = (60.2, 24.9),
        ["PL"] = (52.1, 19.4), ["CZ"] = (49.8, 15.5), ["RO"] = (45.9, 24.97), ["GR"] = (38.3, 23.7), ["TR"] = (39.9, 32.9),
        ["RU"] = (55.8, 37.6), ["UA"] = (50.4, 30.5), ["IL"] = (31.8, 35.0), ["AE"] = (24.5, 54.4), ["SA"] = (24.7, 46.7),
        ["IN"] = (21.1, 78.0), ["PK"] = (30.4, 69.3), ["SG"] = (1.35, 103.8), ["MY"] = (3.1, 101.7), ["TH"] = (13.8, 100.5),
        ["VN"] = (16.0, 106.0), ["ID"] = (-6.2, 106.8), ["PH"] = (14.6, 121.0), ["CN"] = (31.2, 114.0), ["HK"] = (22.3, 114.2),
        ["TW"] = (25.0, 121.5), ["KR"] = (37.5, 127.0), ["JP"] = (35.7, 139.7), ["AU"] = (-33.9, 151.2), ["NZ"] = (-36.8, 174.8),
        ["ZA"] = (-26.2, 28.0), ["NG"] = (6.5, 3.4), ["EG"] = (30.0, 31.2), ["KE"] = (-1.3, 36.8),
    };

    /// <summary>Great-circle distance in km between the two countries' centres, or null when either is not listed.</summary>
    public static double? DistanceKm(string from, string to)
    {
        if (!Places.TryGetValue(from, out var a) || !Places.TryGetValue(to, out var b))
        {
            return null;
        }

        // Haversine on a sphere of the Earth's mean radius (6,371 km).
        static double Rad(double degrees) => degrees * Math.PI / 180;
        var dLat = Rad(b.Lat - a.Lat);
        var dLon = Rad(b.Lon - a.Lon);
        var h = (Math.Sin(dLat / 2) * Math.Sin(dLat / 2)) + (Math.Cos(Rad(a.Lat)) * Math.Cos(Rad(b.Lat)) * Math.Sin(dLon / 2) * Math.Sin(dLon / 2));
        return 2 * 6371 * Math.Asin(Math.Min(1, Math.Sqrt(h)));
    }
}
