using System.Text.Json;
using System.Text.Json.Nodes;

namespace CrmSecurity.Identity.Scim;

/// <summary>
/// Applies a SCIM PATCH request (RFC 7644 §3.5.2) to a copy of the resource's JSON. The result is then treated like a PUT
/// of the whole resource, so PATCH and PUT reach the model through the same audited admin operations and the same checks.
/// Operation names are case-insensitive (Microsoft Entra sends <c>Replace</c>); all operations apply, or none (§3.5.2).
/// </summary>
internal static class ScimPatch
{
    public static JsonObject Apply(JsonObject resource, JsonNode? body)
    {
        if (body is not JsonObject request || !Schemas(request).Contains(ScimSchemas.PatchOp, StringComparer.OrdinalIgnoreCase))
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidSyntax, $"A PATCH body is an object with schemas [\"{ScimSchemas.PatchOp}\"] and Operations (RFC 7644 §3.5.2).");
        }

        if (ScimFilterEvaluator.Get(request, "Operations") is not JsonArray operations || operations.Count == 0)
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidSyntax, "Operations must be a non-empty array.");
        }

        if (operations.Count > ScimSchemas.MaxOperations)
        {
            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.TooMany, $"A PATCH may hold at most {ScimSchemas.MaxOperations} operations.");
        }

        var result = (JsonObject)resource.DeepClone();
        for (var i = 0; i < operations.Count; i++)
        {
            if (operations[i] is not JsonObject operation)
            {
                throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidSyntax, $"Operations[{i}] is not an object.");
            }

            var op = (ScimFilterEvaluator.Get(operation, "op") is JsonValue o && o.TryGetValue<string>(out var name) ? name : "").ToLowerInvariant();
            var path = ScimFilterEvaluator.Get(operation, "path") is JsonValue p && p.TryGetValue<string>(out var text) ? text : null;
            var value = ScimFilterEvaluator.Get(operation, "value")?.DeepClone();
            switch (op)
            {
                case "add" or "replace":
                    if (path is null)
                    {
                        // §3.5.2.1 / §3.5.2.3: without a path the value is an object of attributes to add or replace.
                        if (value is not JsonObject attributes)
                        {
                            throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidValue, $"Operations[{i}]: without a path, value must be an object of attributes.");
                        }

                        foreach (var (key, attribute) in attributes.ToList())
                        {
                            // Entra sends extension attributes as "urn:…:User:department" keys of a path-less value.
                            Set(result, ScimFilterParser.ParsePatchPath(key), attribute?.DeepClone(), op == "add");
                        }
                    }
                    else
                    {
                        Set(result, ScimFilterParser.ParsePatchPath(path), value, op == "add");
                    }

                    break;
                case "remove":
                    // §3.5.2.2: remove needs a path; without one the request is 400 noTarget.
                    Remove(result, ScimFilterParser.ParsePatchPath(path ?? throw new ScimException(StatusCodes.Status400BadRequest, ScimException.NoTarget, $"Operations[{i}]: remove needs a path.")), value);
                    break;
                default:
                    throw new ScimException(StatusCodes.Status400BadRequest, ScimException.InvalidSyntax, $"Operations[{i}].op must be add, remove or replace.");
            }
        }

        return result;
    }

    public static IEnumerable<string> Schemas(JsonObject o) =>
        ScimFilterEvaluator.Get(o, "schemas") is JsonArray schemas
            ? schemas.Select(s => s is JsonValue v && v.TryGetValue<string>(out var text) ? text : "")
            : [];

    private static void Set(JsonObject resource, (ScimPath Path, ScimFilter? Filter, string? Sub) target, JsonNode? value, bool add)
    {
        var owner = Owner(resource, target.Path.Schema);
        var name = Key(owner, target.Path.Attribute);
        if (target.Filter is not null)
        {
            // §3.5.2.3: replace on a value-selection filter changes the matching values; none matching is noTarget.
            var matches = Matching(owner, name, target.Filter);
            if (matches.Count == 0)
            {
                throw new ScimException(StatusCodes.Status400BadRequest, ScimException.NoTarget, $"No value of '{target.Path}' matches the filter.");
            }

            foreach (var element in matches)
            {
                if (target.Sub is { } sub)
                {
                    element[Key(element, sub)] = value?.DeepClone();
                }
                else if (value is JsonObject replacement)
                {
                    foreach (var (key, v) in replacement)
                    {
                        element[Key(element, key)] = v?.DeepClone();
                    }
                }
            }

            return;
        }

        if (target.Path.SubAttribute is { } subAttribute)
        {
            if (owner[name] is not JsonObject complex)
            {
                owner[name] = complex = [];
            }

            complex[Key(complex, subAttribute)] = value;
            return;
        }

        var current = owner[name];
        if (add && current is JsonArray list)
        {
            // §3.5.2.1: add to a multi-valued attribute appends, leaving values already there as they are.
            foreach (var item in value is JsonArray items ? items.Select(v => v?.DeepClone()) : [value])
            {
                if (!list.Any(existing => JsonNode.DeepEquals(existing, item)))
                {
                    list.Add(item);
                }
            }
        }
        else if (current is JsonObject complex && value is JsonObject patch)
        {
            foreach (var (key, v) in patch)
            {
                complex[Key(complex, key)] = v?.DeepClone();
            }
        }
        else
        {
            owner[name] = value;
        }
    }

    private static void Remove(JsonObject resource, (ScimPath Path, ScimFilter? Filter, string? Sub) target, JsonNode? value)
    {
        var owner = Owner(resource, target.Path.Schema);
        var name = Key(owner, target.Path.Attribute);
        if (target.Filter is not null)
        {
            var matches = Matching(owner, name, target.Filter);
            if (owner[name] is JsonArray array)
            {
                foreach (var element in matches)
                {
                    if (target.Sub is { } sub)
                    {
                        element.Remove(Key(element, sub));
                    }
                    else
                    {
                        array.Remove(element);
                    }
                }
            }

            return;
        }

        if (target.Path.SubAttribute is { } subAttribute)
        {
            (owner[name] as JsonObject)?.Remove(Key((JsonObject?)owner[name] ?? [], subAttribute));
            return;
        }

        if (value is JsonArray listed && owner[name] is JsonArray values)
        {
            // Entra's form of a member removal: path "members" with the values to remove.
            foreach (var item in listed)
            {
                var id = item is JsonObject o ? ScimFilterEvaluator.Get(o, "value")?.ToJsonString() : item?.ToJsonString();
                foreach (var existing in values.Where(v => (v is JsonObject e ? ScimFilterEvaluator.Get(e, "value")?.ToJsonString() : v?.ToJsonString()) == id).ToList())
                {
                    values.Remove(existing);
                }
            }

            return;
        }

        owner.Remove(name);
    }

    private static List<JsonObject> Matching(JsonObject owner, string name, ScimFilter filter) =>
        owner[name] is JsonArray array
            ? [.. array.OfType<JsonObject>().Where(element => ScimFilterEvaluator.Matches(filter, element))]
            : [];

    private static JsonObject Owner(JsonObject resource, string? schema)
    {
        if (schema is null || ScimSchemas.IsCore(schema))
        {
            return resource;
        }

        var key = Key(resource, schema);
        if (resource[key] is not JsonObject extension)
        {
            resource[key] = extension = [];
        }

        return extension;
    }

    /// <summary>The key as the object already spells it (attribute names are case-insensitive, RFC 7643 §2.1), or as given.</summary>
    private static string Key(JsonObject o, string name) =>
        o.Select(p => p.Key).FirstOrDefault(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase)) ?? name;

    public static JsonValueKind Kind(JsonNode? node) => node?.GetValueKind() ?? JsonValueKind.Null;
}
