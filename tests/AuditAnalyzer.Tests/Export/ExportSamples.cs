using System.Globalization;
using CrmSecurity.AuditAnalyzer.Export;
using CrmSecurity.AuditAnalyzer.Service;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

/// <summary>Stored findings and event batches the export tests share.</summary>
internal static class ExportSamples
{
    public static readonly DateTimeOffset Updated = new(2026, 11, 20, 9, 30, 0, TimeSpan.Zero);

    public static StoredFindingRow Row(string id = "f-0123456789abcdef", string user = "carl", string? userName = "Carl Jones", string severity = "high", double score = 81) => new()
    {
        Id = id,
        UserId = user,
        UserName = userName,
        Detector = "bulk_export",
        Score = score,
        Severity = severity,
        WindowStartTicks = new DateTimeOffset(2026, 11, 20, 3, 0, 0, TimeSpan.Zero).UtcTicks,
        WindowEndTicks = new DateTimeOffset(2026, 11, 20, 3, 4, 0, TimeSpan.Zero).UtcTicks,
        DetectedTicks = new DateTimeOffset(2026, 11, 20, 3, 4, 0, TimeSpan.Zero).UtcTicks,
        UpdatedTicks = Updated.UtcTicks,
        Json = $$"""
            {"id":"{{id}}","user_id":"{{user}}","peer_group":"sales","detector":"bulk_export","detectors":["bulk_export","odd_hours"],"score":{{score}},"severity":"{{severity}}",
             "window_start":"2026-11-20T03:00:00+00:00","window_end":"2026-11-20T03:04:00+00:00","detected_at":"2026-11-20T03:04:00+00:00",
             "reasons":[{"code":"bulk_export.own_history","detector":"bulk_export","score":81,"text":"records exported today: typical 120, actual 48,000","typical":120,"actual":48000},
                        {"code":"odd_hours.rare_hour","detector":"odd_hours","score":40,"text":"activity at 03:00: typical 0.1 %, actual 1","typical":0.001,"actual":1}],
             "event_ids":["x-1","x-2"],"learning":false,"correlated":true}
            """.ReplaceLineEndings(""),
    };

    public static ExportFinding Finding(ReviewState? review = null) => ExportFinding.FromRow(Row(), review);

    public static string Line(string eventId, string user, string action, DateTimeOffset time, string extra = "") =>
        $"{{\"event_id\":\"{eventId}\",\"timestamp\":\"{time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\",\"user_id\":\"{user}\",\"action\":\"{action}\"{extra}}}";

    /// <summary>A login and a 48,000-record export at 03:00 yesterday: the scorer turns it into a bulk_export finding.</summary>
    public static string NightExport(string user, string prefix)
    {
        var night = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(3);
        return string.Join('\n',
            Line($"{prefix}-1", user, "login", night),
            Line($"{prefix}-2", user, "export", night.AddMinutes(4), ",\"entity\":\"contact\",\"record_count\":48000"));
    }
}
