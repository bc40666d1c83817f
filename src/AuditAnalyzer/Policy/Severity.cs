using System.Text.Json.Serialization;

namespace CrmSecurity.AuditAnalyzer.Policy;

/// <summary>How urgent a finding is, from its score and the policy's thresholds. Written by name: low, medium, high, critical.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Severity>))]
internal enum Severity
{
    [JsonStringEnumMemberName("low")]
    Low,

    [JsonStringEnumMemberName("medium")]
    Medium,

    [JsonStringEnumMemberName("high")]
    High,

    [JsonStringEnumMemberName("critical")]
    Critical,
}

/// <summary>The one mapping between severities and their names (findings, filters, settings, exports, the CLI).</summary>
internal static class SeverityNames
{
    /// <summary>Lowest first.</summary>
    public static IReadOnlyList<string> All { get; } = ["low", "medium", "high", "critical"];

    public static string Name(Severity severity) => All[(int)severity];

    /// <summary>Reads a name exactly as written by <see cref="Name"/>; anything else is false (and <see cref="Severity.Low"/>).</summary>
    public static bool TryParse(string? name, out Severity severity)
    {
        for (var i = 0; i < All.Count; i++)
        {
            if (string.Equals(All[i], name, StringComparison.Ordinal))
            {
                severity = (Severity)i;
                return true;
            }
        }

        severity = Severity.Low;
        return false;
    }

    /// <summary>A stored or configured name; an unknown one reads as <see cref="Severity.Low"/>, so it never raises an alert.</summary>
    public static Severity Parse(string? name) => TryParse(name, out var severity) ? severity : Severity.Low;
}
