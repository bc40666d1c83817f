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
            if (Volatile.Read(ref _cached) is { } cached && cached.Version == snapshot.Version)
            {
                return cached.Directory;
            }

            var directory = Convert(snapshot);
            Volatile.Write(ref _cached, new Converted(snapshot.Version, directory));
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

    private sealed record Converted(long Version, UserDirectory Directory);

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
