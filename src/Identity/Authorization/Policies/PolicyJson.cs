using System.Globalization;
using System.Text.Json;

namespace CrmSecurity.Identity.Authorization.Policies;

/// <summary>A JSON value that remembers its line, so a policy problem names file and line.</summary>
internal sealed class PolicyNode
{
    public required JsonTokenType Kind { get; init; }

    public required int Line { get; init; }

    /// <summary>Properties in file order (duplicates are reported while parsing).</summary>
    public List<(string Name, int Line, PolicyNode Value)>? Properties { get; init; }

    public List<PolicyNode>? Items { get; init; }

    public string? Text { get; init; }

    public double Number { get; init; }

    public bool IsObject => Kind == JsonTokenType.StartObject;

    public PolicyNode? this[string name] => Properties?.FirstOrDefault(p => p.Name == name).Value;

    public int LineOf(string name) => Properties?.FirstOrDefault(p => p.Name == name) is { Value: not null } property ? property.Line : Line;

    /// <summary>Parses a file (comments and trailing commas allowed). Broken JSON and duplicate keys are problems.</summary>
    public static PolicyNode? Parse(ReadOnlySpan<byte> json, string file, List<string> problems)
    {
        // Editors on Windows save UTF-8 with a byte-order mark; Utf8JsonReader refuses it.
        if (json.StartsWith("\uFEFF"u8))
        {
            json = json[3..];
        }

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
                problems.Add($"{file}:1: the file is empty");
                return null;
            }

            return Read(ref reader, lineStarts, file, problems);
        }
        catch (JsonException e)
        {
            problems.Add($"{file}:{(e.LineNumber ?? 0) + 1}: broken JSON: {e.Message.Split(" LineNumber", 2)[0]}");
            return null;
        }
    }

    private static PolicyNode Read(ref Utf8JsonReader reader, List<int> lineStarts, string file, List<string> problems)
    {
        var line = LineOf(reader.TokenStartIndex, lineStarts);
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                var properties = new List<(string, int, PolicyNode)>();
                var names = new HashSet<string>(StringComparer.Ordinal);
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var name = reader.GetString()!;
                    var nameLine = LineOf(reader.TokenStartIndex, lineStarts);
                    reader.Read();
                    var value = Read(ref reader, lineStarts, file, problems);
                    if (!names.Add(name))
                    {
                        problems.Add($"{file}:{nameLine}: duplicate name '{name}'");
                        continue;
                    }

                    properties.Add((name, nameLine, value));
                }

                return new PolicyNode { Kind = JsonTokenType.StartObject, Line = line, Properties = properties };
            case JsonTokenType.StartArray:
                var items = new List<PolicyNode>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    items.Add(Read(ref reader, lineStarts, file, problems));
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

/// <summary>Reads the properties of one policy object, collecting a problem (file:line: what) for anything wrong or unknown.</summary>
internal sealed class PolicyObject(string file, string context, PolicyNode node, List<string> problems)
{
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public string File => file;

    public PolicyNode Node => node;

    public int Line => node.Line;

    public string Origin(int line) => $"{file}:{line}";

    public void Problem(int line, string message) => problems.Add($"{file}:{line}: {message}");

    public string? String(string name, bool required = false)
    {
        _read.Add(name);
        var value = node[name];
        if (value is null)
        {
            if (required)
            {
                Problem(node.Line, $"{context}: '{name}' is required");
            }

            return null;
        }

        if (value.Kind != JsonTokenType.String || string.IsNullOrWhiteSpace(value.Text))
        {
            Problem(value.Line, $"{context}: '{name}' must be a non-empty string");
            return null;
        }

        return value.Text;
    }

    public bool? Boolean(string name)
    {
        _read.Add(name);
        var value = node[name];
        if (value is null)
        {
            return null;
        }

        if (value.Kind is not (JsonTokenType.True or JsonTokenType.False))
        {
            Problem(value.Line, $"{context}: '{name}' must be true or false");
            return null;
        }

        return value.Kind == JsonTokenType.True;
    }

    public int? Integer(string name, int min, int max)
    {
        _read.Add(name);
        var value = node[name];
        if (value is null)
        {
            return null;
        }

        if (value.Kind != JsonTokenType.Number || value.Number != Math.Floor(value.Number) || value.Number < min || value.Number > max)
        {
            Problem(value.Line, $"{context}: '{name}' must be a whole number from {min} to {max}");
            return null;
        }

        return (int)value.Number;
    }

    public IEnumerable<PolicyObject> Objects(string name, string itemContext)
    {
        _read.Add(name);
        var value = node[name];
        if (value is null)
        {
            yield break;
        }

        if (value.Kind != JsonTokenType.StartArray)
        {
            Problem(value.Line, $"{context}: '{name}' must be an array");
            yield break;
        }

        foreach (var item in value.Items!)
        {
            if (!item.IsObject)
            {
                Problem(item.Line, $"{context}: each item of '{name}' must be an object");
                continue;
            }

            yield return new PolicyObject(file, itemContext, item, problems);
        }
    }

    public PolicyObject? Object(string name, string objectContext)
    {
        _read.Add(name);
        var value = node[name];
        if (value is null)
        {
            return null;
        }

        if (!value.IsObject)
        {
            Problem(value.Line, $"{context}: '{name}' must be an object");
            return null;
        }

        return new PolicyObject(file, objectContext, value, problems);
    }

    public IReadOnlyList<string> Strings(string name)
    {
        _read.Add(name);
        var value = node[name];
        if (value is null)
        {
            return [];
        }

        if (value.Kind != JsonTokenType.StartArray || value.Items!.Any(i => i.Kind != JsonTokenType.String))
        {
            Problem(value.Line, $"{context}: '{name}' must be an array of strings");
            return [];
        }

        return [.. value.Items!.Select(i => i.Text!)];
    }

    /// <summary>The object's properties as (name, line, value) for maps such as privileges.</summary>
    public IEnumerable<(string Name, int Line, PolicyNode Value)> Entries()
    {
        foreach (var property in node.Properties ?? [])
        {
            _read.Add(property.Name);
            yield return property;
        }
    }

    /// <summary>Reports every property that no reader asked for: a misspelt key is an error, not silently ignored.</summary>
    public void RejectUnknown(params string[] known)
    {
        foreach (var (name, line, _) in node.Properties ?? [])
        {
            if (!_read.Contains(name) && !known.Contains(name))
            {
                Problem(line, $"{context}: unknown setting '{name}'");
            }
        }
    }
}
