using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Authorization.Store;

/// <summary>
/// Reads a JSON request body with a size limit, turning every failure into RFC 9457 problem details that name the
/// field (the JSON path) or the limit, instead of the framework's bare 400.
/// </summary>
internal static class JsonBody
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        AllowTrailingCommas = false,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    public static async Task<(T? Value, ProblemHttpResult? Problem)> ReadAsync<T>(HttpContext http)
        where T : class
    {
        var limit = http.RequestServices.GetRequiredService<IOptions<IdentitySettings>>().Value.Authorization.MaxRequestBodyBytes;
        if (http.Request.ContentLength > limit)
        {
            return (null, TooLarge(limit));
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = limit;
        }

        if (!(http.Request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) ?? false))
        {
            return (null, Problem(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "Send the body as application/json.", null));
        }

        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(http.Request.Body, Options, http.RequestAborted);
            return value is null
                ? (null, Problem(StatusCodes.Status400BadRequest, "The request is not valid", "The body is empty.", "$"))
                : (value, null);
        }
        catch (JsonException e)
        {
            var path = e.Path ?? "$";
            return (null, Problem(StatusCodes.Status400BadRequest, "The request is not valid", $"{path}: {FirstSentence(e.Message)}", path));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(limit));
        }
    }

    public static ProblemHttpResult Problem(int status, string title, string detail, string? field) =>
        TypedResults.Problem(field is null
            ? new Microsoft.AspNetCore.Mvc.ProblemDetails { Status = status, Title = title, Detail = detail }
            : new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [detail] }) { Status = status, Title = title, Detail = detail });

    private static ProblemHttpResult TooLarge(int limit) => Problem(StatusCodes.Status413PayloadTooLarge, "Request too large",
        $"The body is larger than {limit} bytes (Identity:Authorization:MaxRequestBodyBytes).", null);

    // System.Text.Json appends "Path: ... | LineNumber: ..." to its messages; the path is reported separately.
    private static string FirstSentence(string message) => message.Split(" Path:", 2)[0].Split(" LineNumber:", 2)[0].Trim();
}
