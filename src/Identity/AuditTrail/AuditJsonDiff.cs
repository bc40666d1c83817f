using System.Text.Json;

namespace CrmSecurity.Identity.AuditTrail;

/// <summary>How one property differs between an entry's before and after.</summary>
internal enum AuditDiffKind
{
    Same,
    Added,
    Removed,
    Changed,
}

/// <summary>One property of before/after: its path (<c>privileges.invoice.read</c>), both values as compact JSON, and how it changed.</summary>
internal sealed record AuditDiffLine(string Path, string? Before, string? After, AuditDiffKind Kind);

/// <summary>
/// Before and after of an audit entry compared property by property: objects are walked into (nested properties get a
/// dotted path), anything else (strings, numbers, arrays) is compared as a whole value. A pure function of the two texts.
/// </summary>
internal static class AuditJsonDiff
{
    public static IReadOnlyList<AuditDiffLine> Compare(JsonElement? before, JsonElement? after)
    {
        var lines = new List<AuditDiffLine>();
        Walk("", before, after, lines);
        return lines;
    }

    private static void Walk(string path, JsonElement? before, JsonElement? after, List<AuditDiffLine> lines)
    {
        if (before is { ValueKind: JsonValueKind.Object } b && after is { ValueKind: JsonValueKind.Object } a)
        {
            var names = b.EnumerateObject().Select(p => p.Name).Concat(a.EnumerateObject().Select(p => p.Name)).Distinct(StringComparer.Ordinal);
            foreach (var name in names)
            {
                Walk(path.Length == 0 ? name : $"{path}.{name}", Property(b, name), Property(a, name), lines);
            }

            return;
        }

        // A created or deleted object: each of its properties is added or removed, so the table reads the same way.
        if (before is null && after is { ValueKind: JsonValueKind.Object } created)
        {
            Walk(path, EmptyObject, created, lines);
            return;
        }

        if (after is null && before is { ValueKind: JsonValueKind.Object } deleted)
        {
            Walk(path, deleted, EmptyObject, lines);
            return;
        }

        var beforeText = before?.GetRawText() is { } bt ? Compact(bt) : null;
        var afterText = after?.GetRawText() is { } at ? Compact(at) : null;
        var kind = (beforeText, afterText) switch
        {
            (null, null) => AuditDiffKind.Same,
            (null, _) => AuditDiffKind.Added,
            (_, null) => AuditDiffKind.Removed,
            _ when string.Equals(beforeText, afterText, StringComparison.Ordinal) => AuditDiffKind.Same,
            _ => AuditDiffKind.Changed,
        };
        lines.Add(new AuditDiffLine(path.Length == 0 ? "(value)" : path, beforeText, afterText, kind));
    }

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    private static JsonElement? Property(JsonElement element, string name) => element.TryGetProperty(name, out var value) ? value : null;

    private static string Compact(string json)
    {
        using var document = JsonDocument.Parse(json);
        return JsonSerializer.Serialize(document.RootElement);
    }
}
