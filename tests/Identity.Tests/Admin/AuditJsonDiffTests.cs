using System.Text.Json;
using CrmSecurity.Identity.AuditTrail;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>The audit page's before/after diff: nested objects are walked into, other values compared whole.</summary>
public sealed class AuditJsonDiffTests
{
    [Fact]
    public void A_changed_nested_property_is_named_by_its_path_and_unchanged_ones_are_same()
    {
        var lines = AuditJsonDiff.Compare(Json("""{"name":"Marketing","privileges":{"invoice":{"read":"none"},"lead":{"read":"organization"}}}"""),
            Json("""{"name":"Marketing","privileges":{"invoice":{"read":"organization"},"lead":{"read":"organization"}},"description":"x"}"""));

        Assert.Contains(new AuditDiffLine("privileges.invoice.read", "\"none\"", "\"organization\"", AuditDiffKind.Changed), lines);
        Assert.Contains(new AuditDiffLine("privileges.lead.read", "\"organization\"", "\"organization\"", AuditDiffKind.Same), lines);
        Assert.Contains(new AuditDiffLine("description", null, "\"x\"", AuditDiffKind.Added), lines);
        Assert.Contains(new AuditDiffLine("name", "\"Marketing\"", "\"Marketing\"", AuditDiffKind.Same), lines);
    }

    [Fact]
    public void A_created_object_lists_each_property_as_added_and_arrays_compare_whole()
    {
        var created = AuditJsonDiff.Compare(null, Json("""{"name":"APAC","roles":["a","b"]}"""));
        var changed = AuditJsonDiff.Compare(Json("""{"roles":["a"]}"""), Json("""{"roles":["a","b"]}"""));

        Assert.Equal([AuditDiffKind.Added, AuditDiffKind.Added], created.Select(l => l.Kind));
        Assert.Equal(new AuditDiffLine("roles", "[\"a\"]", "[\"a\",\"b\"]", AuditDiffKind.Changed), Assert.Single(changed));
    }

    [Fact]
    public void A_time_without_an_offset_is_read_on_the_given_wall_clock_and_with_one_as_given()
    {
        var berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");

        var (local, _) = AuditTrailFilter.Parse(name => name == "from" ? "2026-12-06T10:00" : null, berlin);
        var (utc, _) = AuditTrailFilter.Parse(name => name == "from" ? "2026-12-06T10:00:00Z" : null, berlin);
        var (api, _) = AuditTrailFilter.Parse(name => name == "from" ? "2026-12-06T10:00" : null);

        Assert.Equal(new DateTimeOffset(2026, 12, 6, 9, 0, 0, TimeSpan.Zero), local!.From);
        Assert.Equal(new DateTimeOffset(2026, 12, 6, 10, 0, 0, TimeSpan.Zero), utc!.From);
        Assert.Equal(new DateTimeOffset(2026, 12, 6, 10, 0, 0, TimeSpan.Zero), api!.From);
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();
}
