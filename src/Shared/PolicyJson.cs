using System.Globalization;
using System.Text.Json;

namespace CrmSecurity.Shared;

// A policy that cannot be used; each problem is one line naming file, line and what is wrong.
internal sealed class PolicyException(IReadOnlyList<string> problems) : Exception(string.Join(Environment.NewLine, problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

// How a module reads its policy files where the Identity and AuditAnalyzer readers differed before they shared this
// parser. Each module keeps its own rules, so no file that loads today fails to load, or the other way round.
internal sealed record PolicyJsonRules
{
    // A UTF-8 byte-order mark (editors on Windows write one) is skipped; otherwise it is broken JSON.
    public bool SkipByteOrderMark { get; init; }

    // A name repeated in one object is a problem and the first one counts; otherwise the last one counts, silently.
    public bool ReportDuplicateNames { get; init; }

    // Anything after the root value is broken JSON; otherwise it is never read.
    public bool RefuseTrailingContent { get; init; }
}

// A JSON value that remembers its line, so a policy problem names file and line.
internal sealed class PolicyNode
{
    public required JsonTokenType Kind { get; init; }

    public required int Line { get; init; }

    // Properties in file order, each name once (see PolicyJsonRules.ReportDuplicateNames).
    public List<(string Name, int Line, PolicyNode Value)>? Properties { get; init; }

    public List<PolicyNode>? Items { get; init; }

    public string? Text { get; init; }

    public double Number { get; init; }

    public bool IsObject => Kind == JsonTokenType.StartObject;

    public PolicyNode? this[string name] => Properties?.FirstOrDefault(p => p.Name == name).Value;

    // The line of property name, or of this object when it has none.
    public int LineOf(string name) => Properties?.FirstOrDefault(p => p.Name == name) is { Value: not null } property ? property.Line : Line;

    // Parses a file (comments and trailing commas allowed). Broken JSON is a problem (file:line: what) and gives null;
    // rules say what else is one.
    public static PolicyNode? Parse(ReadOnlySpan<byte> json, string file, List<string> problems, PolicyJsonRules rules)
    {
        // Utf8JsonReader refuses a byte-order mark.
        if (rules.SkipByteOrderMark && json.StartsWith("\uFEFF"u8))
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

            var root = Read(ref reader, lineStarts, file, problems, rules);

            // Reading on past the root makes Utf8JsonReader throw on anything but white space and comments (broken JSON).
            if (rules.RefuseTrailingContent && reader.Read())
            {
                problems.Add($"{file}:{LineOf(reader.TokenStartIndex, lineStarts)}: unexpected content after the policy object");
                return null;
            }

            return root;
        }
        catch (JsonException e)
        {
            problems.Add($"{file}:{(e.LineNumber ?? 0) + 1}: broken JSON: {e.Message.Split(" LineNumber", 2)[0]}");
            return null;
        }
    }

    private static PolicyNode Read(ref Utf8JsonReader reader, List<int> lineStarts, string file, List<string> problems, PolicyJsonRules rules)
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
                    var value = Read(ref reader, lineStarts, file, problems, rules);
                    if (names.Add(name))
                    {
                        properties.Add((name, nameLine, value));
                    }
                    else if (rules.ReportDuplicateNames)
                    {
                        problems.Add($"{file}:{nameLine}: duplicate name '{name}'");
                    }
                    else
                    {
                        // The last one in the first one's place, as a dictionary overwrites.
                        properties[properties.FindIndex(p => p.Item1 == name)] = (name, nameLine, value);
                    }
                }

                return new PolicyNode { Kind = JsonTokenType.StartObject, Line = line, Properties = properties };
            case JsonTokenType.StartArray:
                var items = new List<PolicyNode>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    items.Add(Read(ref reader, lineStarts, file, problems, rules));
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
