using System.Collections.Frozen;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrmSecurity.CrmAuthorization;

/// <summary>
/// Masks a successful response by the user's field profile. The value is serialised with the app's JSON options and
/// each property matched to a field of the entity by name, ignoring case and underscores (<c>nationalId</c> is
/// <c>national_id</c>). Deny by default: hidden fields and undeclared properties (other than
/// <see cref="CrmAuthorizationOptions.UnsecuredProperties"/>) are removed, nested objects included.
/// </summary>
internal sealed class CrmFieldMaskingFilter(string entity) : IEndpointFilter
{
    // Per filter, so per entity: the profile's field names of this entity, normalised.
    private readonly ConditionalWeakTable<CrmAccessProfile, FrozenDictionary<string, string>> _fieldNames = [];
    private FrozenSet<string>? _unsecured;

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var result = await next(context);
        object? value;
        var status = StatusCodes.Status200OK;
        switch (result)
        {
            case null:
                return null;
            case IValueHttpResult valued and IStatusCodeHttpResult coded when coded.StatusCode is null or (>= 200 and < 300):
                value = valued.Value;
                status = coded.StatusCode ?? StatusCodes.Status200OK;
                break;
            case IResult:
                return result; // not found, problem details, redirects: nothing of the entity to mask
            case string:
                throw new InvalidOperationException($"A masked endpoint of '{entity}' returned text; return the object so its fields can be masked.");
            default:
                value = result;
                break;
        }

        if (value is null)
        {
            return result;
        }

        var http = context.HttpContext;
        CrmAccessProfile profile;
        try
        {
            profile = await http.GetCrmProfileAsync();
        }
        catch (CrmDecisionException)
        {
            // No user or no answer from the service: nothing of the record is shown (deny by default).
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Not allowed", detail: $"The fields of '{entity}' could not be decided for this caller.");
        }

        var json = http.RequestServices.GetService<IOptions<JsonOptions>>()?.Value.SerializerOptions ?? new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var unsecured = _unsecured ??= http.RequestServices.GetRequiredService<IOptions<CrmAuthorizationOptions>>().Value.UnsecuredProperties
            .Select(Normalise).ToFrozenSet(StringComparer.Ordinal);
        var node = JsonSerializer.SerializeToNode(value, value.GetType(), json);
        var names = _fieldNames.GetValue(profile, p => Index(p, entity));
        switch (node)
        {
            case JsonArray items:
                foreach (var item in items)
                {
                    if (item is JsonObject one)
                    {
                        Mask(one, profile, names, unsecured);
                    }
                }

                break;
            case JsonObject one:
                Mask(one, profile, names, unsecured);
                break;
            default:
                throw new InvalidOperationException($"A masked endpoint of '{entity}' must return an object or a list of objects.");
        }

        return TypedResults.Json(node, json, statusCode: status);
    }

    private void Mask(JsonObject item, CrmAccessProfile profile, FrozenDictionary<string, string> names, FrozenSet<string> unsecured)
    {
        foreach (var property in item.Select(p => p.Key).ToList())
        {
            var normalised = Normalise(property);
            if (unsecured.Contains(normalised))
            {
                continue;
            }

            if (!names.TryGetValue(normalised, out var field))
            {
                item.Remove(property);
                continue;
            }

            switch (profile.Field(entity, field))
            {
                case FieldAccess.Hidden:
                    item.Remove(property);
                    break;
                case FieldAccess.Masked:
                    var current = item[property];
                    item[property] = CrmAccessProfile.Mask(current is JsonValue text && text.TryGetValue<string>(out var s) ? s : current?.ToJsonString(), profile.MaskOf(entity, field));
                    break;
                default:
                    break; // read or update: the value is shown
            }
        }
    }

    /// <summary>Normalised name (lower case, no underscores) to the entity's field name, once per profile.</summary>
    private static FrozenDictionary<string, string> Index(CrmAccessProfile profile, string entity) =>
        profile.Response.Entities.TryGetValue(entity, out var view)
            ? view.Fields.Keys.ToFrozenDictionary(Normalise, name => name, StringComparer.Ordinal)
            : FrozenDictionary<string, string>.Empty;

    private static string Normalise(string name) => name.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();
}
