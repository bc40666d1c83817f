using System.Text.Json;
using System.Text.Json.Serialization;

namespace CrmSecurity.AuditAnalyzer.Findings;

/// <summary>
/// The findings' one JSON contract, generated at build time: snake_case names, absent rather than null for optional
/// values, severities by name. <c>analyze</c>'s JSON Lines, the stored <c>analyzer_live_findings.json</c>, the
/// review queue, the exports and <c>evaluate</c> all go through here.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Finding))]
internal sealed partial class FindingJson : JsonSerializerContext
{
    public static string Serialize(Finding finding) => JsonSerializer.Serialize(finding, Default.Finding);

    public static void Write(Utf8JsonWriter writer, Finding finding) => JsonSerializer.Serialize(writer, finding, Default.Finding);

    /// <summary>Reads one finding; throws <see cref="JsonException"/> naming what was wrong.</summary>
    public static Finding Parse(string json) =>
        JsonSerializer.Deserialize(json, Default.Finding) ?? throw new JsonException("A finding is an object, not null.");

    /// <summary>Reads one finding, or null for text that is not one (a row written by hand, or cut short).</summary>
    public static Finding? ParseOrNull(string json)
    {
        try
        {
            return Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
