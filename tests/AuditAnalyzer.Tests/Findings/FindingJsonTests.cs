using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Tests.Findings;

public sealed class FindingJsonTests
{
    private static readonly Finding Sample = new()
    {
        Id = "f-1",
        UserId = "carl",
        UserName = null,
        PeerGroup = "sales",
        Detector = "bulk_export",
        Detectors = ["bulk_export", "odd_hours"],
        Score = 81.9,
        Severity = Severity.High,
        WindowStart = new DateTimeOffset(2026, 11, 20, 4, 0, 0, TimeSpan.FromHours(1)),
        WindowEnd = new DateTimeOffset(2026, 11, 20, 3, 4, 0, TimeSpan.Zero),
        DetectedAt = new DateTimeOffset(2026, 11, 20, 3, 4, 0, TimeSpan.Zero),
        Reasons =
        [
            new Reason("bulk_export.own_history", 80.96, "records exported today: typical 120, actual 48,000", 120.00049, 48000),
            new Reason("odd_hours.rare_hour", 40, "activity at 03:00", double.NaN, null),
        ],
        EventIds = ["x-1"],
    };

    [Fact]
    public void A_finding_is_written_in_snake_case_with_its_severity_by_name_and_numbers_as_shown()
    {
        var json = JsonDocument.Parse(FindingJson.Serialize(Sample)).RootElement;

        Assert.Equal("f-1", json.GetProperty("id").GetString());
        Assert.Equal("carl", json.GetProperty("user_id").GetString());
        Assert.False(json.TryGetProperty("user_name", out _)); // absent, not null
        Assert.Equal("high", json.GetProperty("severity").GetString());
        Assert.Equal(81, json.GetProperty("score").GetDouble()); // rounded down: 81.9 is not yet 82
        Assert.Equal("2026-11-20T03:00:00+00:00", json.GetProperty("window_start").GetString()); // UTC whatever the offset given
        Assert.True(json.GetProperty("correlated").GetBoolean());
        var top = json.GetProperty("reasons")[0];
        Assert.Equal("bulk_export", top.GetProperty("detector").GetString());
        Assert.Equal(81.0, top.GetProperty("score").GetDouble());
        Assert.Equal(120.0, top.GetProperty("typical").GetDouble());
        Assert.False(json.GetProperty("reasons")[1].TryGetProperty("typical", out _)); // NaN is no measure
        Assert.Equal(["x-1"], json.GetProperty("event_ids").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void What_is_written_reads_back_equal_field_by_field()
    {
        var back = FindingJson.Parse(FindingJson.Serialize(Sample));

        Assert.Equal(FindingJson.Serialize(Sample), FindingJson.Serialize(back));
        Assert.Equal(Sample.Reasons, back.Reasons);
        Assert.Equal(Sample.WindowStart, back.WindowStart);
        Assert.Equal(Severity.High, back.Severity);
    }

    [Theory]
    [InlineData("""{"id":"f-1","user_id":"u","detector":"d","detectors":[],"score":1,"severity":"severe","window_start":"2026-01-01T00:00:00Z","window_end":"2026-01-01T00:00:00Z","detected_at":"2026-01-01T00:00:00Z","reasons":[],"event_ids":[]}""")]
    [InlineData("""{"id":"f-1","user_id":"u","detector":"d","detectors":[],"score":1,"severity":"low","reasons":[],"event_ids":[]}""")]
    [InlineData("not json")]
    public void Text_that_is_not_a_whole_finding_is_refused_rather_than_read_half(string json)
    {
        Assert.Throws<JsonException>(() => FindingJson.Parse(json));
        Assert.Null(FindingJson.ParseOrNull(json));
    }
}
