using System.Globalization;
using System.Text.Json;

namespace CrmSecurity.AuditAnalyzer.Policy;

/// <summary>A JSON value that remembers the line it started on, so policy errors can name file and line.</summary>
internal sealed class PolicyNode
{
    public required JsonTokenType Kind { get; init; }

    public required int Line { get; init; }

    public Dictionary<string, PolicyNode>? Properties { get; init; }

    public Dictionary<string, int>? PropertyLines { get; init; }

    public List<PolicyNode>? Items { get; init; }

    public string? Text { get; init; }

    public double Number { get; init; }

    /// <summary>Parses a policy file (comments and trailing commas allowed). Throws <see cref="PolicyException"/> on broken JSON.</summary>
    public static PolicyNode Parse(ReadOnlySpan<byte> json, string file)
    {
        var lineStarts = new List<int> { 0 };
        for (var i = 0; i < json.Length; i++)
        {
            if (json[i] == '\n')
            {
                lineStarts.Add(i + 1);
            }
        }

        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        try
        {
            if (!reader.Read())
            {
                throw new PolicyException([$"{file}:1: the file is empty"]);
            }

            var root = Read(ref reader, lineStarts);
            if (reader.Read())
            {
                throw new PolicyException([$"{file}:{LineOf(reader.TokenStartIndex, lineStarts)}: unexpected content after the policy object"]);
            }

            return root;
        }
        catch (JsonException e)
        {
            throw new PolicyException([$"{file}:{(e.LineNumber ?? 0) + 1}: broken JSON: {e.Message.Split(" LineNumber", 2)[0]}"]);
        }
    }

    private static PolicyNode Read(ref Utf8JsonReader reader, List<int> lineStarts)
    {
        var line = LineOf(reader.TokenStartIndex, lineStarts);
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                var properties = new Dictionary<string, PolicyNode>(StringComparer.Ordinal);
                var lines = new Dictionary<string, int>(StringComparer.Ordinal);
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var name = reader.GetString()!;
                    var nameLine = LineOf(reader.TokenStartIndex, lineStarts);
                    reader.Read();
                    properties[name] = Read(ref reader, lineStarts);
                    lines[name] = nameLine;
                }

                return new PolicyNode { Kind = JsonTokenType.StartObject, Line = line, Properties = properties, PropertyLines = lines };
            case JsonTokenType.StartArray:
                var items = new List<PolicyNode>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    items.Add(Read(ref reader, lineStarts));
                }

                return new PolicyNode { Kind = JsonTokenType.StartArray, Line = line, Items = items };
            case JsonTokenType.String:
                return new PolicyNode { Kind = JsonTokenType.String, Line = line, Text = reader.GetString() };
            case JsonTokenType.Number:
                return new PolicyNode { Kind = JsonTokenType.Number, Line = line, Number = reader.GetDouble(), Text = reader.GetDouble().ToString(CultureInfo.InvariantCulture) };
            default:
                return new PolicyNode { Kind = reader.TokenType, Line = line };
        }
    }

    private static int LineOf(long index, List<int> lineStarts)
    {
        var at = lineStarts.BinarySearch((int)index);
        return (at >= 0 ? at : ~at - 1) + 1;
    }
}

/// <summary>A policy file that cannot be used; each problem is one line naming file, line and setting.</summary>
internal sealed class PolicyException(IReadOnlyList<string> problems) : Exception(string.Join(Environment.NewLine, problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>Reads settings from a <see cref="PolicyNode"/> object, collecting every problem instead of stopping at the first.</summary>
internal sealed class PolicySection(string file, string path, PolicyNode node, List<string> problems)
{
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public string File { get; } = file;

    public List<string> Problems { get; } = problems;

    public double Number(string key, double fallback, double min, double max)
    {
        if (!TryGet(key, out var value, out var line))
        {
            return fallback;
        }

        if (value.Kind != JsonTokenType.Number)
        {
            Problem(line, key, "must be a number");
            return fallback;
        }

        if (value.Number < min || value.Number > max)
        {
            Problem(line, key, $"is {value.Text}; it must be between {Format(min)} and {Format(max)}");
            return fallback;
        }

        return value.Number;
    }

    public int Integer(string key, int fallback, int min, int max)
    {
        var number = Number(key, fallback, min, max);
        if (number != Math.Floor(number))
        {
            TryGet(key, out _, out var line);
            Problem(line, key, "must be a whole number");
            return fallback;
        }

        return (int)number;
    }

    public IReadOnlyList<string> Strings(string key, IReadOnlyList<string> fallback)
    {
        if (!TryGet(key, out var value, out var line))
        {
            return fallback;
        }

        if (value.Kind != JsonTokenType.StartArray || value.Items!.Any(i => i.Kind != JsonTokenType.String || string.IsNullOrWhiteSpace(i.Text)))
        {
            Problem(line, key, "must be a list of non-empty strings");
            return fallback;
        }

        return value.Items!.Select(i => i.Text!).ToList();
    }

    public string? String(string key)
    {
        if (!TryGet(key, out var value, out var line))
        {
            return null;
        }

        if (value.Kind != JsonTokenType.String || string.IsNullOrWhiteSpace(value.Text))
        {
            Problem(line, key, "must be a non-empty string");
            return null;
        }

        return value.Text;
    }

    public PolicySection? Section(string key)
    {
        if (!TryGet(key, out var value, out var line))
        {
            return null;
        }

        if (value.Kind != JsonTokenType.StartObject)
        {
            Problem(line, key, "must be an object");
            return null;
        }

        return new PolicySection(File, Join(key), value, Problems);
    }

    public IEnumerable<PolicySection> Sections(string key)
    {
        if (!TryGet(key, out var value, out var line))
        {
            yield break;
        }

        if (value.Kind != JsonTokenType.StartArray)
        {
            Problem(line, key, "must be a list of objects");
            yield break;
        }

        for (var i = 0; i < value.Items!.Count; i++)
        {
            var item = value.Items[i];
            if (item.Kind != JsonTokenType.StartObject)
            {
                Problems.Add($"{File}:{item.Line}: {Join(key)}[{i}] must be an object");
                continue;
            }

            yield return new PolicySection(File, $"{Join(key)}[{i}]", item, Problems);
        }
    }

    public void Problem(int line, string key, string message) => Problems.Add($"{File}:{line}: {Join(key)} {message}");

    public int LineOf(string key) => node.PropertyLines!.GetValueOrDefault(key, node.Line);

    /// <summary>Reports settings that no code read: a misspelt name would otherwise be silently ignored.</summary>
    public void RejectUnknown()
    {
        foreach (var (name, line) in node.PropertyLines!)
        {
            if (!_used.Contains(name))
            {
                Problems.Add($"{File}:{line}: {Join(name)} is not a known setting");
            }
        }
    }

    private bool TryGet(string key, out PolicyNode value, out int line)
    {
        _used.Add(key);
        line = LineOf(key);
        return node.Properties!.TryGetValue(key, out value!) && value.Kind != JsonTokenType.Null;
    }

    private string Join(string key) => path.Length == 0 ? key : $"{path}.{key}";

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);
}
