using System.Globalization;
using System.Text;
using CrmSecurity.AuditAnalyzer.Ingestion;

namespace CrmSecurity.AuditAnalyzer.Organisation;

/// <summary>One row of the directory snapshot (users.csv or Identity).</summary>
internal sealed record DirectoryUser
{
    public required string UserId { get; init; }

    public string? UserName { get; init; }

    public string Department { get; init; } = "";

    public string Title { get; init; } = "";

    public IReadOnlyList<string> Roles { get; init; } = [];

    public string? BusinessUnit { get; init; }

    public string? Manager { get; init; }

    public TimeZoneInfo TimeZone { get; init; } = TimeZoneInfo.Utc;

    public DateOnly? Hired { get; init; }

    public DateOnly? Terminated { get; init; }

    /// <summary>Peers are the people with the same department and primary role (the first role listed, else the title).</summary>
    public string PeerGroup => PeerGroupOf(Department, Roles.Count > 0 ? Roles[0] : Title);

    public static string PeerGroupOf(string department, string role) => $"{department}/{role}";

    /// <summary>
    /// A digest of every field the scorer reads (name, department, title, roles, unit, manager, time zone, hire and
    /// termination dates): equal for equal data whatever the object, 0 for someone not in the directory. Live scoring
    /// compares it to apply a directory change to the people it changed only.
    /// </summary>
    public static ulong ScoringDigest(DirectoryUser? user)
    {
        if (user is null)
        {
            return 0;
        }

        var line = string.Join('\u001f', user.UserId, user.UserName, user.Department, user.Title, string.Join('\u001e', user.Roles), user.BusinessUnit,
            user.Manager, user.TimeZone.Id, user.Hired?.DayNumber, user.Terminated?.DayNumber);
        var digest = System.IO.Hashing.XxHash3.HashToUInt64(Encoding.UTF8.GetBytes(line));
        return digest == 0 ? 1 : digest;
    }
}

/// <summary>The directory snapshot: who is who, where they work from, and who has left.</summary>
internal sealed class UserDirectory
{
    public static readonly UserDirectory Empty = new([]);

    private readonly Dictionary<string, DirectoryUser> _users;

    public UserDirectory(IEnumerable<DirectoryUser> users)
    {
        _users = new Dictionary<string, DirectoryUser>(StringComparer.Ordinal);
        foreach (var user in users)
        {
            _users[user.UserId] = user;
        }
    }

    public int Count => _users.Count;

    public IEnumerable<DirectoryUser> Users => _users.Values;

    /// <summary>Finds a user; Salesforce 18-character ids also match the 15-character form and back.</summary>
    public DirectoryUser? Find(string userId)
    {
        if (_users.TryGetValue(userId, out var user))
        {
            return user;
        }

        if (userId.Length == 18 && _users.TryGetValue(userId[..15], out user))
        {
            return user;
        }

        return null;
    }
}

/// <summary>
/// Reads users.csv: <c>user_id, user_name, department, title, roles, business_unit, manager, timezone,
/// hired, terminated</c> (header required, any order). Roles are separated by <c>;</c> or <c>|</c>. A time
/// zone the system does not know becomes UTC with a warning; a bad date is reported and ignored.
/// </summary>
internal static class DirectoryReader
{
    public static UserDirectory Read(string path, IngestionReport report)
    {
        using var stream = LineReader.Open(path);
        return Read(stream, Path.GetFileName(path), report);
    }

    public static UserDirectory Read(Stream stream, string displayName, IngestionReport report)
    {
        using var physical = new LineReader(stream);
        var lines = new CsvRecordReader(physical); // RFC 4180: a quoted cell may hold a line break
        var row = new CsvRow();
        var index = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var users = new List<DirectoryUser>();
        var zones = new Dictionary<string, TimeZoneInfo>(StringComparer.OrdinalIgnoreCase);
        while (lines.TryReadRecord(out var line))
        {
            if (line.Trim(" \t"u8).IsEmpty)
            {
                continue;
            }

            if (!row.Split(line))
            {
                report.Warn($"{displayName}:{lines.LineNumber}", $"{displayName}:{lines.LineNumber}: unbalanced quotes; row skipped");
                continue;
            }

            if (index.Count == 0)
            {
                for (var i = 0; i < row.Count; i++)
                {
                    index[Encoding.UTF8.GetString(row[i]).Trim()] = i;
                }

                if (!index.ContainsKey("user_id"))
                {
                    throw new InvalidDataException($"{displayName}:1: the header has no 'user_id' column.");
                }

                continue;
            }

            string Cell(string name) => index.TryGetValue(name, out var i) ? Encoding.UTF8.GetString(row[i]).Trim() : "";
            var id = Cell("user_id");
            if (id.Length == 0)
            {
                report.Warn($"{displayName}:{lines.LineNumber}", $"{displayName}:{lines.LineNumber}: missing user_id; row skipped");
                continue;
            }

            var where = $"{displayName}:{lines.LineNumber}";
            users.Add(new DirectoryUser
            {
                UserId = id,
                UserName = NullIfEmpty(Cell("user_name")),
                Department = Cell("department"),
                Title = Cell("title"),
                Roles = Cell("roles").Split([';', '|'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                BusinessUnit = NullIfEmpty(Cell("business_unit")),
                Manager = NullIfEmpty(Cell("manager")),
                TimeZone = Zone(Cell("timezone"), zones, where, report),
                Hired = Date(Cell("hired"), "hired", where, report),
                Terminated = Date(Cell("terminated"), "terminated", where, report),
            });
        }

        return new UserDirectory(users);
    }

    private static TimeZoneInfo Zone(string name, Dictionary<string, TimeZoneInfo> zones, string where, IngestionReport report)
    {
        if (name.Length == 0)
        {
            return TimeZoneInfo.Utc;
        }

        if (zones.TryGetValue(name, out var zone))
        {
            return zone;
        }

        if (!TimeZoneInfo.TryFindSystemTimeZoneById(name, out zone))
        {
            report.Warn("timezone:" + name, $"{where}: unknown time zone '{name}'; its users are treated as UTC");
            zone = TimeZoneInfo.Utc;
        }

        zones[name] = zone;
        return zone;
    }

    private static DateOnly? Date(string value, string field, string where, IngestionReport report)
    {
        if (value.Length == 0)
        {
            return null;
        }

        if (DateOnly.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            return date;
        }

        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var instant))
        {
            return DateOnly.FromDateTime(instant.Date);
        }

        report.Warn($"{where}:{field}", $"{where}: {field} '{value}' is not a date (yyyy-MM-dd); ignored");
        return null;
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;
}
