namespace CrmSecurity.AuditAnalyzer.Organisation;

/// <summary>One person of the directory snapshot (design.md: <c>users.csv</c> or Identity).</summary>
public sealed record DirectoryEntry
{
    /// <summary>The id access events carry as <c>user_id</c>.</summary>
    public required string UserId { get; init; }

    public string? UserName { get; init; }

    /// <summary>With the first role, the peer group the user is compared with.</summary>
    public string Department { get; init; } = "";

    public string Title { get; init; } = "";

    public IReadOnlyList<string> Roles { get; init; } = [];

    public string? BusinessUnit { get; init; }

    /// <summary>The manager's user id.</summary>
    public string? Manager { get; init; }

    /// <summary>IANA time zone id; working hours are judged in it. Null or unknown means UTC.</summary>
    public string? TimeZone { get; init; }

    public DateOnly? Hired { get; init; }

    public DateOnly? Terminated { get; init; }
}

/// <summary>The directory as of one version of its source; a new version means something changed.</summary>
public sealed record DirectorySnapshot(long Version, IReadOnlyList<DirectoryEntry> Users)
{
    public static readonly DirectorySnapshot Empty = new(0, []);
}

/// <summary>
/// Supplies the current directory to live scoring (peers, local working hours, roles, terminations). The host
/// implements it from its identity provider; without one, every user is unknown and in UTC.
/// </summary>
public interface IDirectorySource
{
    /// <summary>The current snapshot; cheap to call (a source caches it until its version changes).</summary>
    DirectorySnapshot Current { get; }
}

/// <summary>The source's snapshot as the scorer's <see cref="UserDirectory"/>, converted once per version.</summary>
internal sealed class LiveDirectory(IEnumerable<IDirectorySource> sources)
{
    private readonly IDirectorySource? _source = sources.LastOrDefault();
    private Converted? _cached;

    public UserDirectory Current
    {
        get
        {
            if (_source is null)
            {
                return UserDirectory.Empty;
            }

            var snapshot = _source.Current;
            var cached = Volatile.Read(ref _cached);
            if (cached is not null && cached.Version == snapshot.Version)
            {
                return cached.Directory;
            }

            // Most model versions change privileges, not people: keep the same directory object when no entry
            // changed, so live scoring (which rebuilds a partition when its directory object changes) does not replay.
            var fingerprint = Fingerprint(snapshot);
            var directory = cached is not null && cached.Fingerprint == fingerprint ? cached.Directory : Convert(snapshot);
            Volatile.Write(ref _cached, new Converted(snapshot.Version, fingerprint, directory));
            return directory;
        }
    }

    internal static UserDirectory Convert(DirectorySnapshot snapshot)
    {
        var zones = new Dictionary<string, TimeZoneInfo>(StringComparer.Ordinal);
        return new UserDirectory(snapshot.Users.Select(u => new DirectoryUser
        {
            UserId = u.UserId,
            UserName = u.UserName,
            Department = u.Department,
            Title = u.Title,
            Roles = u.Roles,
            BusinessUnit = u.BusinessUnit,
            Manager = u.Manager,
            TimeZone = Zone(u.TimeZone, zones),
            Hired = u.Hired,
            Terminated = u.Terminated,
        }));
    }

    private sealed record Converted(long Version, string Fingerprint, UserDirectory Directory);

    /// <summary>SHA-256 over every entry's fields, in order: equal when no person's directory data changed.</summary>
    internal static string Fingerprint(DirectorySnapshot snapshot)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var u in snapshot.Users)
        {
            var line = string.Join('\u001f', u.UserId, u.UserName, u.Department, u.Title, string.Join('\u001e', u.Roles), u.BusinessUnit, u.Manager,
                u.TimeZone, u.Hired?.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
                u.Terminated?.ToString("O", System.Globalization.CultureInfo.InvariantCulture)) + "\n";
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(line));
        }

        return System.Convert.ToHexString(hash.GetHashAndReset());
    }

    private static TimeZoneInfo Zone(string? id, Dictionary<string, TimeZoneInfo> zones)
    {
        if (string.IsNullOrEmpty(id))
        {
            return TimeZoneInfo.Utc;
        }

        if (!zones.TryGetValue(id, out var zone))
        {
            zone = TimeZoneInfo.TryFindSystemTimeZoneById(id, out var found) ? found : TimeZoneInfo.Utc;
            zones[id] = zone;
        }

        return zone;
    }
}
