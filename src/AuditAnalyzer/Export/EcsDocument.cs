using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>
/// A finding change as one Elastic Common Schema document (ECS 8.x, https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html),
/// nested objects rather than dotted keys. What is not an ECS field lives under <c>crm_security.finding</c>, the
/// custom namespace ECS asks for (https://www.elastic.co/guide/en/ecs/current/ecs-custom-fields-in-ecs.html).
/// The same document is the JSON Lines export and the <c>data</c> of a webhook call.
/// </summary>
internal static class EcsDocument
{
    /// <summary>The ECS version the field names follow (<c>ecs.version</c>).</summary>
    public const string EcsVersion = "8.11.0";

    /// <summary>ECS <c>event.module</c>; <c>event.dataset</c> is "module.dataset" by ECS convention.</summary>
    public const string Module = "crm_security";

    public const string Dataset = "crm_security.finding";

    /// <summary>
    /// Numeric <c>event.severity</c>: the event source's own scale (ECS event.severity). The bands of Elastic's
    /// detection rules (21 low, 47 medium, 73 high, 99 critical), so rules that map severity from it line up.
    /// </summary>
    public static int NumericSeverity(Severity severity) => severity switch
    {
        Severity.Critical => 99,
        Severity.High => 73,
        Severity.Medium => 47,
        _ => 21,
    };

    /// <summary>The strongest reason, which already reads "what: typical X, actual Y".</summary>
    public static string Message(ExportFinding finding) =>
        finding.Finding.Reasons.Count > 0 && finding.Finding.Reasons[0] is { } top
            ? top.Text.Length > 0 ? top.Text : $"{top.Code}: typical {Number(top.Typical)}, actual {Number(top.Actual)}"
            : $"{finding.Finding.Detector} finding for user {finding.Finding.UserId}";

    public static string ToJsonLine(ExportFinding finding)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, finding);
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    public static void Write(Utf8JsonWriter w, ExportFinding f)
    {
        w.WriteStartObject();
        // ECS base fields: @timestamp is when the finding's activity was detected (event time, not export time).
        w.WriteString("@timestamp", f.Finding.DetectedAt.UtcDateTime);
        w.WriteString("message", Message(f));
        w.WriteStartObject("ecs");
        w.WriteString("version", EcsVersion);
        w.WriteEndObject();

        // ECS event fields (https://www.elastic.co/guide/en/ecs/current/ecs-event.html). kind "alert": a detection
        // raised by a rule. category and type come from the allowed values; every category here allows type "info".
        w.WriteStartObject("event");
        w.WriteString("kind", "alert");
        w.WriteStartArray("category");
        foreach (var category in Categories(f))
        {
            w.WriteStringValue(category);
        }

        w.WriteEndArray();
        w.WriteStartArray("type");
        w.WriteStringValue("info");
        w.WriteEndArray();
        w.WriteString("id", f.Id);
        // event.created: when the analyzer produced this version of the finding (each change is a new version).
        w.WriteString("created", f.UpdatedAt.UtcDateTime);
        w.WriteString("start", f.Finding.WindowStart.UtcDateTime);
        w.WriteString("end", f.Finding.WindowEnd.UtcDateTime);
        w.WriteNumber("severity", NumericSeverity(f.Finding.Severity));
        w.WriteNumber("risk_score", f.Finding.Score);
        w.WriteNumber("risk_score_norm", Math.Clamp(f.Finding.Score, 0, 100));
        w.WriteString("module", Module);
        w.WriteString("dataset", Dataset);
        w.WriteString("reason", Message(f));
        w.WriteEndObject();

        // ECS rule fields (https://www.elastic.co/guide/en/ecs/current/ecs-rule.html): the detector that fired.
        w.WriteStartObject("rule");
        w.WriteString("id", f.Finding.Detector);
        w.WriteString("name", f.Finding.Detector);
        w.WriteString("ruleset", "crm-security-audit-analyzer");
        w.WriteEndObject();

        // ECS user fields (https://www.elastic.co/guide/en/ecs/current/ecs-user.html).
        w.WriteStartObject("user");
        w.WriteString("id", f.Finding.UserId);
        if (f.Finding.UserName is not null)
        {
            w.WriteString("name", f.Finding.UserName);
        }

        w.WriteEndObject();

        // ECS related.user: every user identifier in the document, for pivoting (https://www.elastic.co/guide/en/ecs/current/ecs-related.html).
        w.WriteStartObject("related");
        w.WriteStartArray("user");
        w.WriteStringValue(f.Finding.UserId);
        if (f.Finding.UserName is not null && f.Finding.UserName != f.Finding.UserId)
        {
            w.WriteStringValue(f.Finding.UserName);
        }

        w.WriteEndArray();
        w.WriteEndObject();

        w.WriteStartObject("crm_security");
        w.WriteStartObject("finding");
        w.WriteString("id", f.Id);
        w.WriteNumber("score", f.Finding.Score);
        w.WriteString("severity", SeverityNames.Name(f.Finding.Severity));
        // Equal for re-saves that changed nothing (event.created moves on anyway): a SIEM can drop those by it.
        w.WriteString("fingerprint", f.Fingerprint);
        w.WriteStartArray("detectors");
        foreach (var detector in f.Finding.Detectors)
        {
            w.WriteStringValue(detector);
        }

        w.WriteEndArray();
        if (f.Finding.PeerGroup is not null)
        {
            w.WriteString("peer_group", f.Finding.PeerGroup);
        }

        w.WriteBoolean("learning", f.Finding.Learning);
        w.WriteBoolean("correlated", f.Finding.Detectors.Count > 1);
        w.WriteStartArray("reasons");
        foreach (var r in f.Finding.Reasons)
        {
            w.WriteStartObject();
            w.WriteString("code", r.Code);
            w.WriteString("detector", r.Detector);
            w.WriteNumber("score", r.Score);
            w.WriteString("text", r.Text);
            if (r.Typical is { } typical)
            {
                w.WriteNumber("typical", typical);
            }

            if (r.Actual is { } actual)
            {
                w.WriteNumber("actual", actual);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("event_ids");
        foreach (var id in f.Finding.EventIds)
        {
            w.WriteStringValue(id);
        }

        w.WriteEndArray();
        if (f.Review?.Status is { } status)
        {
            w.WriteString("status", status);
        }

        if (f.Review?.Disposition is { } disposition)
        {
            w.WriteString("disposition", disposition);
        }

        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>
    /// ECS event.category allowed values: every finding is an intrusion_detection alert; each detector adds the
    /// area it watches (<see cref="Detection.IDetector.EcsCategory"/>).
    /// </summary>
    private static List<string> Categories(ExportFinding f)
    {
        var categories = new List<string> { "intrusion_detection" };
        foreach (var detector in f.Finding.Detectors)
        {
            var area = Detection.DetectorCatalog.Find(detector)?.EcsCategory;
            if (area is not null && !categories.Contains(area))
            {
                categories.Add(area);
            }
        }

        return categories;
    }

    private static string Number(double? value) => value is { } v ? v.ToString("#,0.###", System.Globalization.CultureInfo.InvariantCulture) : "?";
}
