using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrmSecurity.Identity.Scim;

/// <summary>A SCIM attribute path (RFC 7644 §3.10): an optional schema URN, an attribute and an optional sub-attribute.</summary>
internal sealed record ScimPath(string? Schema, string Attribute, string? SubAttribute)
{
    public override string ToString() => (Schema is null ? "" : Schema + ":") + Attribute + (SubAttribute is null ? "" : "." + SubAttribute);
}

/// <summary>A node of a parsed SCIM filter (RFC 7644 §3.4.2.2).</summary>
internal abstract record ScimFilter
{
    public sealed record And(ScimFilter Left, ScimFilter Right) : ScimFilter;

    public sealed record Or(ScimFilter Left, ScimFilter Right) : ScimFilter;

    public sealed record Not(ScimFilter Inner) : ScimFilter;

    public sealed record Present(ScimPath Path) : ScimFilter;

    public sealed record Compare(ScimPath Path, string Operator, JsonNode? Value) : ScimFilter;

    /// <summary><c>emails[type eq "work"]</c>: some value of the multi-valued attribute matches the inner filter.</summary>
    public sealed record ValuePath(ScimPath Path, ScimFilter Inner) : ScimFilter;
}

/// <summary>
/// Parses SCIM filters and PATCH paths (RFC 7644 §3.4.2.2, §3.5.2) and evaluates filters on a resource's JSON. A filter is
/// untrusted input: its length, nesting and number of comparisons are bounded so a crafted one cannot exhaust the stack
/// or the processor, and anything outside the grammar is a 400 <c>invalidFilter</c> (or <c>invalidPath</c>) naming where.
/// </summary>
internal sealed class ScimFilterParser
{
    public const int MaxLength = 2048;
    public const int MaxDepth = 8;
    public const int MaxComparisons = 50;

    private static readonly string[] Operators = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];

    private readonly string _text;
    private readonly string _scimType;
    private int _at;
    private int _depth;
    private int _comparisons;

    private ScimFilterParser(string text, string scimType)
    {
        _text = text;
        _scimType = scimType;
    }

    public static ScimFilter Parse(string text)
    {
        // RFC 7644 §3.4.2.2 / §3.12: a filter the server cannot parse is 400 invalidFilter. Bounds: OWASP ASVS 4.0.3 V13.1.4-style input limits.
        if (text.Length > MaxLength)
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidFilter, $"The filter is longer than {MaxLength} characters.");
        }

        var parser = new ScimFilterParser(text, ScimException.InvalidFilter);
        var filter = parser.ParseOr();
        parser.SkipSpace();
        return parser._at < text.Length ? throw parser.Error($"unexpected '{parser.Rest()}'") : filter;
    }

    /// <summary>A PATCH path: <c>attr</c>, <c>attr.sub</c>, <c>urn:…:attr</c>, <c>attr[filter]</c> or <c>attr[filter].sub</c>.</summary>
    public static (ScimPath Path, ScimFilter? Filter, string? SubAttribute) ParsePatchPath(string text)
    {
        if (text.Length > MaxLength)
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidPath, $"The path is longer than {MaxLength} characters.");
        }

        var parser = new ScimFilterParser(text, ScimException.InvalidPath);
        parser.SkipSpace();
        var path = parser.ReadPath();
        ScimFilter? filter = null;
        string? sub = null;
        if (parser.Peek('['))
        {
            parser._at++;
            filter = parser.ParseOr();
            parser.Expect(']');
            if (parser.Peek('.'))
            {
                parser._at++;
                sub = parser.ReadName();
            }
        }

        parser.SkipSpace();
        if (parser._at < text.Length)
        {
            throw parser.Error($"unexpected '{parser.Rest()}'");
        }

        return (path, filter, sub);
    }

    private ScimFilter ParseOr()
    {
        var left = ParseAnd();
        while (Keyword("or"))
        {
            left = new ScimFilter.Or(left, ParseAnd());
        }

        return left;
    }

    private ScimFilter ParseAnd()
    {
        var left = ParsePrimary();
        while (Keyword("and"))
        {
            left = new ScimFilter.And(left, ParsePrimary());
        }

        return left;
    }

    private ScimFilter ParsePrimary()
    {
        SkipSpace();
        if (Keyword("not"))
        {
            SkipSpace();
            Expect('(');
            return new ScimFilter.Not(Nested(ParseGroupRest));
        }

        if (Peek('('))
        {
            _at++;
            return Nested(ParseGroupRest);
        }

        var path = ReadPath();
        if (Peek('['))
        {
            _at++;
            var inner = Nested(ParseOr);
            Expect(']');
            return new ScimFilter.ValuePath(path, inner);
        }

        if (++_comparisons > MaxComparisons)
        {
            throw Error($"more than {MaxComparisons} comparisons");
        }

        SkipSpace();
        var op = ReadName().ToLowerInvariant();
        if (op == "pr")
        {
            return new ScimFilter.Present(path);
        }

        if (!Operators.Contains(op, StringComparer.Ordinal))
        {
            throw Error($"unknown operator '{op}' (use eq, ne, co, sw, ew, gt, ge, lt, le or pr)");
        }

        SkipSpace();
        return new ScimFilter.Compare(path, op, ReadValue());
    }

    private ScimFilter ParseGroupRest()
    {
        var inner = ParseOr();
        Expect(')');
        return inner;
    }

    private ScimFilter Nested(Func<ScimFilter> parse)
    {
        if (++_depth > MaxDepth)
        {
            throw Error($"nested deeper than {MaxDepth} levels");
        }

        var result = parse();
        _depth--;
        return result;
    }

    private ScimPath ReadPath()
    {
        SkipSpace();
        var start = _at;
        while (_at < _text.Length && (char.IsAsciiLetterOrDigit(_text[_at]) || _text[_at] is ':' or '.' or '_' or '-' or '$'))
        {
            _at++;
        }

        var token = _text[start.._at];
        if (token.Length == 0)
        {
            throw Error("an attribute name is expected");
        }

        string? schema = null;
        var colon = token.LastIndexOf(':');
        if (colon >= 0)
        {
            // RFC 7644 §3.10: a fully qualified name is the schema URN, ':', then the attribute.
            schema = token[..colon];
            token = token[(colon + 1)..];
        }

        var parts = token.Split('.');
        if (parts.Length > 2 || parts.Any(p => p.Length == 0 || !char.IsAsciiLetter(p[0]) && p[0] != '$'))
        {
            throw Error($"'{token}' is not an attribute path");
        }

        return new ScimPath(schema, parts[0], parts.Length == 2 ? parts[1] : null);
    }

    private string ReadName()
    {
        var start = _at;
        while (_at < _text.Length && (char.IsAsciiLetterOrDigit(_text[_at]) || _text[_at] is '_' or '-' or '$'))
        {
            _at++;
        }

        return start == _at ? throw Error("a name is expected") : _text[start.._at];
    }

    private JsonNode? ReadValue()
    {
        if (Peek('"'))
        {
            // A JSON string (RFC 7644 §3.4.2.2: compValue is a JSON value), escapes included.
            var start = _at++;
            while (_at < _text.Length && _text[_at] != '"')
            {
                _at += _text[_at] == '\\' ? 2 : 1;
            }

            if (_at >= _text.Length)
            {
                throw Error("a string is not closed");
            }

            _at++;
            try
            {
                return JsonNode.Parse(_text[start.._at]);
            }
            catch (JsonException)
            {
                throw Error("a string is not valid JSON");
            }
        }

        var word = ReadWord();
        switch (word)
        {
            case "true": return JsonValue.Create(true);
            case "false": return JsonValue.Create(false);
            case "null": return null;
        }

        return decimal.TryParse(word, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
            ? JsonValue.Create(number)
            : throw Error($"'{word}' is not a value (strings are quoted)");
    }

    private string ReadWord()
    {
        var start = _at;
        while (_at < _text.Length && !char.IsWhiteSpace(_text[_at]) && _text[_at] is not ')' and not ']')
        {
            _at++;
        }

        return start == _at ? throw Error("a value is expected") : _text[start.._at];
    }

    private bool Keyword(string word)
    {
        SkipSpace();
        if (_at + word.Length <= _text.Length && string.Compare(_text, _at, word, 0, word.Length, StringComparison.OrdinalIgnoreCase) == 0
            && (_at + word.Length == _text.Length || _text[_at + word.Length] is ' ' or '('))
        {
            _at += word.Length;
            return true;
        }

        return false;
    }

    private bool Peek(char c)
    {
        SkipSpace();
        return _at < _text.Length && _text[_at] == c;
    }

    private void Expect(char c)
    {
        if (!Peek(c))
        {
            throw Error($"'{c}' is expected");
        }

        _at++;
    }

    private void SkipSpace()
    {
        while (_at < _text.Length && _text[_at] == ' ')
        {
            _at++;
        }
    }

    private string Rest() => _text.Length - _at > 20 ? string.Concat(_text.AsSpan(_at, 20), "…") : _text[_at..];

    private ScimException Error(string what) =>
        new(StatusCodes.Status400BadRequest, _scimType, string.Create(CultureInfo.InvariantCulture, $"The {(_scimType == ScimException.InvalidPath ? "path" : "filter")} is not valid at character {_at + 1}: {what}."));
}

/// <summary>Evaluates a parsed filter on a resource's JSON (attribute names case-insensitive, RFC 7643 §2.1).</summary>
internal static class ScimFilterEvaluator
{
    /// <summary>Attributes compared case-sensitively (RFC 7643 §3.1: <c>id</c> and <c>externalId</c> have caseExact true).</summary>
    private static readonly string[] CaseExact = ["id", "externalId", "value"];

    public static bool Matches(ScimFilter filter, JsonObject resource) => filter switch
    {
        ScimFilter.And and => Matches(and.Left, resource) && Matches(and.Right, resource),
        ScimFilter.Or or => Matches(or.Left, resource) || Matches(or.Right, resource),
        ScimFilter.Not not => !Matches(not.Inner, resource),
        ScimFilter.Present present => Values(resource, present.Path).Any(v => v is not null && !(v is JsonValue s && s.TryGetValue<string>(out var text) && text.Length == 0)),
        ScimFilter.Compare compare => CompareAny(Values(resource, compare.Path), compare),
        ScimFilter.ValuePath valuePath => Elements(resource, valuePath.Path).Any(element => element is JsonObject o
            ? Matches(valuePath.Inner, o)
            : Matches(valuePath.Inner, new JsonObject { ["value"] = element?.DeepClone() })),
        _ => false,
    };

    /// <summary>The values of an attribute (each element's for a multi-valued one; its <c>value</c> when no sub-attribute is named).</summary>
    public static IEnumerable<JsonNode?> Values(JsonObject resource, ScimPath path)
    {
        foreach (var element in Elements(resource, path))
        {
            if (path.SubAttribute is { } sub)
            {
                if (element is JsonObject o && Get(o, sub) is var value)
                {
                    yield return value;
                }
            }
            else
            {
                // RFC 7644 §3.4.2.2: a filter on a complex multi-valued attribute without a sub-attribute means its "value".
                yield return element is JsonObject o ? Get(o, "value") : element;
            }
        }
    }

    /// <summary>The attribute itself: its elements when multi-valued, else the one value (nothing when absent).</summary>
    public static IEnumerable<JsonNode?> Elements(JsonObject resource, ScimPath path)
    {
        var owner = Owner(resource, path.Schema);
        if (owner is null || !TryGet(owner, path.Attribute, out var node))
        {
            return [];
        }

        // A new list, not a JsonArray: a node belongs to one parent only.
        return node is JsonArray array ? [.. array] : new List<JsonNode?> { node };
    }

    /// <summary>The object holding a schema's attributes: the resource for a core schema, the extension's object otherwise.</summary>
    public static JsonObject? Owner(JsonObject resource, string? schema)
    {
        if (schema is null || ScimSchemas.IsCore(schema))
        {
            return resource;
        }

        return TryGet(resource, schema, out var extension) ? extension as JsonObject : null;
    }

    public static JsonNode? Get(JsonObject o, string name) => TryGet(o, name, out var value) ? value : null;

    public static bool TryGet(JsonObject o, string name, out JsonNode? value)
    {
        foreach (var (key, node) in o)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                value = node;
                return true;
            }
        }

        value = null;
        return false;
    }

    private static bool CompareAny(IEnumerable<JsonNode?> values, ScimFilter.Compare compare)
    {
        var list = values.ToList();
        if (compare.Operator == "ne")
        {
            return !list.Any(v => Equal(v, compare.Value, compare.Path));
        }

        return list.Any(v => CompareOne(v, compare));
    }

    private static bool Equal(JsonNode? actual, JsonNode? expected, ScimPath path)
    {
        if (actual is null || expected is null)
        {
            return actual is null && expected is null;
        }

        return Text(actual) is { } a && Text(expected) is { } e
            ? string.Equals(a, e, Comparison(path))
            : JsonNode.DeepEquals(actual, expected);
    }

    private static bool CompareOne(JsonNode? actual, ScimFilter.Compare compare)
    {
        if (compare.Operator == "eq")
        {
            return Equal(actual, compare.Value, compare.Path);
        }

        if (actual is null || compare.Value is null)
        {
            return false;
        }

        var comparison = Comparison(compare.Path);
        if (Text(actual) is { } a && Text(compare.Value) is { } e)
        {
            return compare.Operator switch
            {
                "co" => a.Contains(e, comparison),
                "sw" => a.StartsWith(e, comparison),
                "ew" => a.EndsWith(e, comparison),
                _ => Ordered(Order(a, e, comparison), compare.Operator),
            };
        }

        if (actual.GetValueKind() == JsonValueKind.Number && compare.Value.GetValueKind() == JsonValueKind.Number && compare.Operator is "gt" or "ge" or "lt" or "le")
        {
            return Ordered(actual.GetValue<decimal>().CompareTo(compare.Value.GetValue<decimal>()), compare.Operator);
        }

        // RFC 7644 §3.4.2.2: gt/ge/lt/le on booleans (and co/sw/ew on non-strings) are not defined.
        throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidFilter, $"The operator '{compare.Operator}' cannot compare {compare.Path} with that value.");
    }

    /// <summary>Date-times (meta.lastModified and the like) compare as instants, other strings lexically.</summary>
    private static int Order(string actual, string expected, StringComparison comparison) =>
        DateTimeOffset.TryParse(actual, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var a)
        && DateTimeOffset.TryParse(expected, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var e)
            ? a.CompareTo(e)
            : string.Compare(actual, expected, comparison);

    private static bool Ordered(int order, string op) => op switch
    {
        "gt" => order > 0,
        "ge" => order >= 0,
        "lt" => order < 0,
        _ => order <= 0,
    };

    private static StringComparison Comparison(ScimPath path) =>
        CaseExact.Contains(path.SubAttribute ?? path.Attribute, StringComparer.OrdinalIgnoreCase) && !(path.SubAttribute is "value" && path.Attribute.Equals("emails", StringComparison.OrdinalIgnoreCase))
            ? StringComparison.Ordinal
            : StringComparison.OrdinalIgnoreCase;

    private static string? Text(JsonNode node) =>
        node.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : null;
}

/// <summary>A SCIM error (RFC 7644 §3.12): the HTTP status, the <c>scimType</c> keyword and a sentence saying what to fix.</summary>
internal sealed class ScimException : Exception
{
    public const string InvalidFilter = "invalidFilter";
    public const string InvalidPath = "invalidPath";
    public const string InvalidValue = "invalidValue";
    public const string InvalidSyntax = "invalidSyntax";
    public const string NoTarget = "noTarget";
    public const string Mutability = "mutability";
    public const string Uniqueness = "uniqueness";
    public const string TooMany = "tooMany";

    public ScimException()
    {
    }

    public ScimException(string message)
        : base(message)
    {
    }

    public ScimException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public ScimException(int status, string? scimType, string detail)
        : base(detail)
    {
        Status = status;
        ScimType = scimType;
    }

    public int Status { get; } = StatusCodes.Status400BadRequest;

    public string? ScimType { get; }

    /// <summary>The error body of RFC 7644 §3.12.</summary>
    public JsonObject ToJson()
    {
        var body = new JsonObject
        {
            ["schemas"] = new JsonArray(ScimSchemas.Error),
            ["status"] = Status.ToString(CultureInfo.InvariantCulture),
        };
        if (ScimType is not null)
        {
            body["scimType"] = ScimType;
        }

        body["detail"] = Message;
        return body;
    }
}
