using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Review;

namespace CrmSecurity.AuditAnalyzer.Findings;

/// <summary>
/// The evidence timeline of a finding, copied into its row when it is saved (<see cref="FindingStore"/>): stored events
/// are deleted after <c>AuditAnalyzer:Live:RetentionDays</c>, findings are not, and a reviewer opening an old finding
/// must still see what it was raised on. Only what the timeline shows is copied: what was done, when, from where, by
/// which sending client; never the user (the finding says who) and never the event's raw line.
/// </summary>
internal static class EvidenceCopy
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public static string Serialize(IReadOnlyList<EvidenceEvent> events) => JsonSerializer.Serialize(events, Options);

    /// <summary>The copied timeline, or null when there is none (a finding saved before copies were kept) or it cannot be read.</summary>
    public static List<EvidenceEvent>? ParseOrNull(string? json)
    {
        if (string.IsNullOrEmpty(json))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<List<EvidenceEvent>>(json, Options);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
