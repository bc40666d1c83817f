using System.Globalization;
using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Scoring;

namespace CrmSecurity.AuditAnalyzer.Tests.Support;

/// <summary>
/// A small crafted organisation for detector tests: users with a directory row, a few weeks of ordinary
/// history written event by event, then the events under test; everything is scored through the real
/// <see cref="Scorer"/> in timestamp order.
/// </summary>
internal sealed class Org
{
    public static readonly DateOnly Monday = new(2026, 3, 2);

    private readonly List<DirectoryUser> _users = [];
    private readonly List<AccessEvent> _events = [];
    private int _sequence;

    public ScoringPolicy Policy { get; set; } = ScoringPolicy.Default();

    public Org User(string id, string department = "Sales", string role = "Account Executive", string zone = "UTC",
        DateOnly? terminated = null, DateOnly? hired = null, string? businessUnit = null)
    {
        _users.Add(new DirectoryUser
        {
            BusinessUnit = businessUnit,
            UserId = id,
            UserName = id + "@example.test",
            Department = department,
            Title = role,
            Roles = [role],
            TimeZone = TimeZoneInfo.FindSystemTimeZoneById(zone),
            Terminated = terminated,
            Hired = hired,
        });
        return this;
    }

    /// <summary>Peers: <paramref name="count"/> users of the same department and role with ordinary history.</summary>
    public Org Peers(string prefix, int count, string department = "Sales", string role = "Account Executive", int days = 30, double exportRecords = 40,
        string exportEntity = "contact")
    {
        for (var i = 0; i < count; i++)
        {
            var id = $"{prefix}{i:00}";
            User(id, department, role);
            WorkDays(id, days, exportRecords: exportRecords * (0.7 + (0.03 * i)), exportEntity: exportEntity);
        }

        return this;
    }

    /// <summary>Ordinary working weekdays from <see cref="Monday"/> on: login, reads, an export, logout, between the given hours (local).</summary>
    public Org WorkDays(string user, int days, double exportRecords = 40, int startHour = 9, int endHour = 17, string? country = null,
        string exportEntity = "contact", int skipFirst = 0)
    {
        var zone = _users.Single(u => u.UserId == user).TimeZone;
        var worked = 0;
        for (var d = 0; worked < days; d++)
        {
            var date = Monday.AddDays(d);
            if (date.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday)
            {
                continue;
            }

            worked++;
            if (worked <= skipFirst)
            {
                continue;
            }

            var span = (endHour - startHour + 24) % 24;
            Add(user, Local(zone, date, startHour, 0), AccessAction.Login, country: country);
            for (var i = 0; i < 6; i++)
            {
                var hour = startHour + (span * (i + 1) / 8.0);
                Add(user, Local(zone, date, hour, 0), i % 2 == 0 ? AccessAction.Read : AccessAction.List, "contact", i % 2 == 0 ? 1 : 20, country: country);
            }

            if (exportRecords > 0)
            {
                Add(user, Local(zone, date, startHour + (span / 2.0), 7), AccessAction.Export, exportEntity, (long)Math.Max(1, exportRecords * (0.8 + (0.4 * ((d * 7) % 10) / 10.0))), country: country);
            }

            Add(user, Local(zone, date, startHour + span, 0), AccessAction.Logout, country: country);
        }

        return this;
    }

    public static DateTimeOffset Local(TimeZoneInfo zone, DateOnly date, double hour, int minute)
    {
        var local = date.ToDateTime(TimeOnly.MinValue).AddHours(hour).AddMinutes(minute);
        return new DateTimeOffset(local, zone.GetUtcOffset(local));
    }

    public static DateTimeOffset Utc(DateOnly date, double hour) => new(date.ToDateTime(TimeOnly.MinValue).AddHours(hour), TimeSpan.Zero);

    public AccessEvent Add(string user, DateTimeOffset at, AccessAction action, string? entity = null, long records = 1,
        string? target = null, string? privilege = null, int fields = 0, string? country = null, string? details = null,
        (string Id, string? Owner, string? Unit)? record = null)
    {
        var e = new AccessEvent
        {
            Timestamp = at,
            UserId = user,
            Action = action,
            EventId = string.Create(CultureInfo.InvariantCulture, $"t{++_sequence}"),
            HasSourceId = true,
            Entity = entity,
            RecordCount = records,
            TargetUser = target,
            Privilege = privilege,
            FieldCount = fields,
            Country = country,
            Details = details,
            RecordId = record?.Id,
            RecordOwner = record?.Owner,
            RecordBusinessUnit = record?.Unit,
        };
        _events.Add(e);
        return e;
    }

    public UserDirectory Directory => new(_users);

    /// <summary>Scores every event in timestamp order and returns the findings (all of them, low included).</summary>
    public List<Finding> Score(BaselineSet? baselines = null) => Score(out _, baselines);

    public List<Finding> Score(out Scorer scorer, BaselineSet? baselines = null, DateTimeOffset? from = null, DateTimeOffset? before = null)
    {
        scorer = new ScoringOptions { Policy = Policy, Directory = Directory, Baselines = baselines }.Build();
        var findings = new List<Finding>();
        foreach (var e in _events.Where(e => (from is null || e.Timestamp >= from) && (before is null || e.Timestamp < before)).OrderBy(e => e.UtcTicks))
        {
            scorer.Score(e, findings);
        }

        scorer.Complete(findings);
        return findings;
    }

    public static DateOnly Weekday(int index)
    {
        var worked = -1;
        for (var d = 0; ; d++)
        {
            var date = Monday.AddDays(d);
            if (date.DayOfWeek is not (DayOfWeek.Saturday or DayOfWeek.Sunday) && ++worked == index)
            {
                return date;
            }
        }
    }
}

internal static class FindingAssertions
{
    public static IEnumerable<Finding> For(this IEnumerable<Finding> findings, string user) => findings.Where(f => f.UserId == user);

    public static IEnumerable<Finding> Alerts(this IEnumerable<Finding> findings) => findings.Where(f => f.Severity >= Severity.Medium);

    public static bool HasReason(this Finding finding, string code) => finding.Reasons.Any(r => r.Code == code);
}
