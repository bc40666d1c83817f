using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Scoring;

/// <summary>
/// Findings as JSON Lines: <c>id, user_id, user_name, peer_group, detector, detectors, score, severity,
/// window_start, window_end, detected_at</c> (ISO 8601), <c>reasons</c> (code, detector, score, text,
/// typical, actual), <c>event_ids</c>, <c>learning</c>, <c>correlated</c>.
/// </summary>
internal sealed class FindingWriter(Stream output) : IDisposable
{
    private readonly Utf8JsonWriter _writer = new(output, new JsonWriterOptions { SkipValidation = true });

    public static string SeverityName(Severity severity) => severity switch
    {
        Severity.Critical => "critical",
        Severity.High => "high",
        Severity.Medium => "medium",
        _ => "low",
    };

    public void Write(Finding f)
    {
        var w = _writer;
        w.WriteStartObject();
        w.WriteString("id", f.Id);
        w.WriteString("user_id", f.UserId);
        if (f.UserName is not null)
        {
            w.WriteString("user_name", f.UserName);
        }

        if (f.PeerGroup is not null)
        {
            w.WriteString("peer_group", f.PeerGroup);
        }

        w.WriteString("detector", f.Detector);
        w.WriteStartArray("detectors");
        foreach (var d in f.Detectors)
        {
            w.WriteStringValue(d);
        }

        w.WriteEndArray();
        w.WriteNumber("score", Math.Round(f.Score));
        w.WriteString("severity", SeverityName(f.Severity));
        w.WriteString("window_start", f.WindowStart.ToUniversalTime());
        w.WriteString("window_end", f.WindowEnd.ToUniversalTime());
        w.WriteString("detected_at", f.DetectedAt.ToUniversalTime());
        w.WriteStartArray("reasons");
        foreach (var r in f.Reasons)
        {
            WriteReason(w, r);
        }

        w.WriteEndArray();
        w.WriteStartArray("event_ids");
        foreach (var id in f.EventIds)
        {
            w.WriteStringValue(id);
        }

        w.WriteEndArray();
        w.WriteBoolean("learning", f.Learning);
        w.WriteBoolean("correlated", f.Correlated);
        w.WriteEndObject();
        w.Flush();
        output.WriteByte((byte)'\n');
        w.Reset();
    }

    public void Dispose()
    {
        _writer.Flush();
        _writer.Dispose();
    }

    private static void WriteReason(Utf8JsonWriter w, Reason r)
    {
        w.WriteStartObject();
        w.WriteString("code", r.Code);
        w.WriteString("detector", r.Detector);
        w.WriteNumber("score", Math.Round(r.Score, 1));
        w.WriteString("text", r.Text);
        if (r.Typical is { } typical && double.IsFinite(typical))
        {
            w.WriteNumber("typical", Math.Round(typical, 3));
        }

        if (r.Actual is { } actual && double.IsFinite(actual))
        {
            w.WriteNumber("actual", Math.Round(actual, 3));
        }

        w.WriteEndObject();
    }
}
