using System.Globalization;
using System.Text.Json;
using CrmSecurity.Shared;

namespace CrmSecurity.AuditAnalyzer.Policy;

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

    public int LineOf(string key) => node.LineOf(key);

    /// <summary>Reports settings that no code read: a misspelt name would otherwise be silently ignored.</summary>
    public void RejectUnknown()
    {
        foreach (var (name, line, _) in node.Properties!)
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
        value = node[key]!;
        return value is { Kind: not JsonTokenType.Null };
    }

    private string Join(string key) => path.Length == 0 ? key : $"{path}.{key}";

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);
}
