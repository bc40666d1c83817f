using System.Text.Json;
using CrmSecurity.Shared;

namespace CrmSecurity.Identity.Authorization.Policies;

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
