using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Export;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

public sealed class EcsDocumentTests
{
    private static JsonElement Document(ReviewState? review = null) => JsonDocument.Parse(EcsDocument.ToJsonLine(ExportSamples.Finding(review))).RootElement;

    [Fact]
    public void A_finding_maps_onto_ecs_event_rule_user_and_related_fields()
    {
        var doc = Document();

        Assert.Equal("2026-11-20T03:04:00Z", doc.GetProperty("@timestamp").GetString());
        var e = doc.GetProperty("event");
        Assert.Equal("alert", e.GetProperty("kind").GetString());
        Assert.Equal(["intrusion_detection", "database", "session"], e.GetProperty("category").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(["info"], e.GetProperty("type").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal("f-0123456789abcdef", e.GetProperty("id").GetString());
        Assert.Equal("2026-11-20T09:30:00Z", e.GetProperty("created").GetString());
        Assert.Equal("2026-11-20T03:00:00Z", e.GetProperty("start").GetString());
        Assert.Equal("2026-11-20T03:04:00Z", e.GetProperty("end").GetString());
        Assert.Equal(73, e.GetProperty("severity").GetInt32());
        Assert.Equal(JsonValueKind.Number, e.GetProperty("severity").ValueKind);
        Assert.Equal(81, e.GetProperty("risk_score").GetDouble());
        Assert.Equal("crm_security", e.GetProperty("module").GetString());
        Assert.Equal("crm_security.finding", e.GetProperty("dataset").GetString());
        Assert.Equal("bulk_export", doc.GetProperty("rule").GetProperty("name").GetString());
        Assert.Equal("bulk_export", doc.GetProperty("rule").GetProperty("id").GetString());
        Assert.Equal("carl", doc.GetProperty("user").GetProperty("id").GetString());
        Assert.Equal("Carl Jones", doc.GetProperty("user").GetProperty("name").GetString());
        Assert.Equal(["carl", "Carl Jones"], doc.GetProperty("related").GetProperty("user").EnumerateArray().Select(u => u.GetString()));
        Assert.Equal("records exported today: typical 120, actual 48,000", doc.GetProperty("message").GetString());
    }

    [Fact]
    public void Product_fields_carry_reasons_detectors_and_event_ids_under_crm_security_finding()
    {
        var finding = Document().GetProperty("crm_security").GetProperty("finding");

        var top = finding.GetProperty("reasons")[0];
        Assert.Equal("bulk_export.own_history", top.GetProperty("code").GetString());
        Assert.Equal(120, top.GetProperty("typical").GetDouble());
        Assert.Equal(48000, top.GetProperty("actual").GetDouble());
        Assert.Equal(2, finding.GetProperty("reasons").GetArrayLength());
        Assert.Equal(["bulk_export", "odd_hours"], finding.GetProperty("detectors").EnumerateArray().Select(d => d.GetString()));
        Assert.Equal(["x-1", "x-2"], finding.GetProperty("event_ids").EnumerateArray().Select(d => d.GetString()));
        Assert.Equal("high", finding.GetProperty("severity").GetString());
        Assert.Equal(ExportSamples.Finding().Fingerprint, finding.GetProperty("fingerprint").GetString());
        Assert.True(finding.GetProperty("correlated").GetBoolean());
        Assert.False(finding.TryGetProperty("status", out _));
        Assert.False(finding.TryGetProperty("disposition", out _));
    }

    [Fact]
    public void A_review_state_when_given_is_exported_as_status_and_disposition()
    {
        var finding = Document(new ReviewState("confirmed", "true_positive")).GetProperty("crm_security").GetProperty("finding");

        Assert.Equal("confirmed", finding.GetProperty("status").GetString());
        Assert.Equal("true_positive", finding.GetProperty("disposition").GetString());
    }

    [Theory]
    [InlineData("low", 21)]
    [InlineData("medium", 47)]
    [InlineData("high", 73)]
    [InlineData("critical", 99)]
    public void Severity_is_numeric_and_ordered(string severity, int expected)
    {
        var finding = ExportFinding.FromRow(ExportSamples.Row(severity: severity));

        Assert.Equal(expected, EcsDocument.NumericSeverity(finding.Finding.Severity));
    }

    [Fact]
    public void A_user_without_a_name_has_only_the_id_in_user_and_related()
    {
        var doc = JsonDocument.Parse(EcsDocument.ToJsonLine(ExportFinding.FromRow(ExportSamples.Row(userName: null)))).RootElement;

        Assert.False(doc.GetProperty("user").TryGetProperty("name", out _));
        Assert.Equal(["carl"], doc.GetProperty("related").GetProperty("user").EnumerateArray().Select(u => u.GetString()));
    }

    [Fact]
    public void A_re_save_with_nothing_changed_keeps_its_fingerprint_and_any_change_moves_it()
    {
        var row = ExportSamples.Row();
        var first = ExportFinding.FromRow(row);
        row.UpdatedTicks += TimeSpan.TicksPerMinute;

        Assert.Equal(first.Fingerprint, ExportFinding.FromRow(row).Fingerprint);
        Assert.NotEqual(first.Fingerprint, ExportFinding.FromRow(row, new ReviewState("acknowledged", null)).Fingerprint);
        Assert.NotEqual(first.Fingerprint, ExportFinding.FromRow(ExportSamples.Row(score: 90)).Fingerprint);
    }

    [Theory]
    [InlineData("{broken")]
    [InlineData("[1,2]")]
    public void A_row_with_unreadable_json_still_exports_from_its_columns(string json)
    {
        var row = ExportSamples.Row();
        row.Json = json;

        var doc = JsonDocument.Parse(EcsDocument.ToJsonLine(ExportFinding.FromRow(row))).RootElement;

        Assert.Equal("carl", doc.GetProperty("user").GetProperty("id").GetString());
        Assert.Equal(["bulk_export"], doc.GetProperty("crm_security").GetProperty("finding").GetProperty("detectors").EnumerateArray().Select(d => d.GetString()));
        Assert.Equal("bulk_export finding for user carl", doc.GetProperty("message").GetString());
    }

    [Fact]
    public void A_cursor_round_trips_and_anything_else_is_refused()
    {
        var cursor = new FeedCursor(638_000_000_000_000_000, "f-abc");

        Assert.True(FeedCursor.TryDecode(cursor.Encode(), out var decoded));
        Assert.Equal(cursor, decoded);
        Assert.False(FeedCursor.TryDecode("not a cursor!", out _));
        Assert.False(FeedCursor.TryDecode(System.Buffers.Text.Base64Url.EncodeToString("2:1:f-abc"u8), out _));
        Assert.False(FeedCursor.TryDecode(System.Buffers.Text.Base64Url.EncodeToString("1:-5:f-abc"u8), out _));
        Assert.False(FeedCursor.TryDecode(System.Buffers.Text.Base64Url.EncodeToString("1:5:"u8), out _));
    }
}
