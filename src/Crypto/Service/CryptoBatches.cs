using System.Globalization;
using System.Text.Json.Serialization;
using CrmSecurity.Crypto.Fields;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Crypto.Service;

/// <summary>Many values in one call (Vault transit's <c>batch_input</c>): each item is shaped as the single call's request.</summary>
/// <typeparam name="T">The single call's request.</typeparam>
/// <param name="Items">The requests, at most <see cref="CryptoServiceOptions.MaxBatchItems"/>.</param>
internal sealed record BatchRequest<T>(List<T?>? Items)
    where T : class;

/// <summary>One result per item, in the order of the items.</summary>
/// <typeparam name="T">The single call's response.</typeparam>
/// <param name="Results">The results.</param>
internal sealed record BatchResponse<T>(IReadOnlyList<BatchResult<T>> Results)
    where T : class;

/// <summary>The answer for item <paramref name="Index"/>: the single call's response, or the error it would have answered.</summary>
/// <typeparam name="T">The single call's response.</typeparam>
/// <param name="Index">The item's position in <c>items</c>, from 0.</param>
/// <param name="Result">The single call's response when the item was served.</param>
/// <param name="Error">Why it was not, when it was not.</param>
internal sealed record BatchResult<T>(
    int Index,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] T? Result,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] BatchError? Error)
    where T : class;

/// <summary>
/// An item's error: the single call's problem details, with every field named from the batch's root
/// (<c>items[3].rowId</c>), so that a message names the item and what was wrong with it even out of context.
/// </summary>
/// <param name="Status">The status a single call would have answered with (400, 403, 422).</param>
/// <param name="Title">The problem's title.</param>
/// <param name="Detail">What was wrong, naming the item.</param>
/// <param name="Errors">Messages by field, named from the batch's root.</param>
/// <param name="Reason">For a value that could not be decrypted, the reason (<c>RowMismatch</c>, ...).</param>
internal sealed record BatchError(
    int Status,
    string Title,
    string Detail,
    IReadOnlyDictionary<string, string[]> Errors,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Reason);

/// <summary>
/// The batch endpoints: each item goes through exactly the single call's code (validation, tenant binding, record and
/// field checks, one access event per value decrypted or rewrapped), so a batch grants nothing a loop of single calls
/// would not. One bad item does not fail the others; the batch itself is refused only when it is malformed or too large.
/// </summary>
internal static class CryptoBatches
{
    internal static Task<Results<Ok<BatchResponse<EncryptResponse>>, ValidationProblem, ProblemHttpResult>> EncryptAsync(
        BatchRequest<EncryptRequest> request, HttpContext http, FieldEncryption encryption, CryptoColumns columns, IOptions<CryptoServiceOptions> options) =>
        RunAsync(request, options.Value, encryption, (item, caller, ciphers) => CryptoServiceEndpoints.EncryptOneAsync(item, http, caller, ciphers, columns), http);

    internal static Task<Results<Ok<BatchResponse<DecryptResponse>>, ValidationProblem, ProblemHttpResult>> DecryptAsync(
        BatchRequest<DecryptRequest> request, HttpContext http, FieldEncryption encryption, IUnmaskedFieldAccess access, CryptoColumns columns, TimeProvider time, IOptions<CryptoServiceOptions> options) =>
        RunAsync(request, options.Value, encryption, (item, caller, ciphers) => CryptoServiceEndpoints.DecryptOneAsync(item, http, caller, ciphers, encryption, access, columns, time), http);

    internal static Task<Results<Ok<BatchResponse<BlindIndexResponse>>, ValidationProblem, ProblemHttpResult>> ComputeBlindIndexAsync(
        BatchRequest<BlindIndexRequest> request, HttpContext http, FieldEncryption encryption, CryptoColumns columns, IOptions<CryptoServiceOptions> options) =>
        RunAsync(request, options.Value, encryption, (item, caller, ciphers) => CryptoServiceEndpoints.ComputeBlindIndexOneAsync(item, http, caller, ciphers, columns), http);

    internal static Task<Results<Ok<BatchResponse<RewrapResponse>>, ValidationProblem, ProblemHttpResult>> RewrapAsync(
        BatchRequest<RewrapRequest> request, HttpContext http, FieldEncryption encryption, CryptoColumns columns, TimeProvider time, IOptions<CryptoServiceOptions> options) =>
        RunAsync(request, options.Value, encryption, (item, caller, ciphers) => CryptoServiceEndpoints.RewrapOneAsync(item, http, caller, ciphers, encryption, columns, time), http);

    private static async Task<Results<Ok<BatchResponse<TResponse>>, ValidationProblem, ProblemHttpResult>> RunAsync<TRequest, TResponse>(
        BatchRequest<TRequest> request,
        CryptoServiceOptions options,
        FieldEncryption encryption,
        Func<TRequest, CryptoCaller, ColumnCiphers, ValueTask<ItemOutcome<TResponse>>> one,
        HttpContext http)
        where TRequest : class
        where TResponse : class
    {
        if (request.Items is not { } items)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["items"] = ["items is required: a list of requests, each shaped as the single call's."] });
        }

        if (items.Count == 0)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["items"] = ["items holds no request."] });
        }

        if (items.Count > options.MaxBatchItems)
        {
            // RFC 9110 §15.5.14: the content is larger than the service is willing to process. Refused whole, before any
            // item is served, so that no caller learns which part of an oversized batch would have been answered.
            var message = string.Create(CultureInfo.InvariantCulture, $"items holds {items.Count} requests, more than the limit of {options.MaxBatchItems} (Crypto:Service:MaxBatchItems); split the batch.");
            var problem = new HttpValidationProblemDetails(new Dictionary<string, string[]> { ["items"] = [message] })
            {
                Status = StatusCodes.Status413PayloadTooLarge,
                Title = "Batch too large",
                Detail = message,
            };
            problem.Extensions["limit"] = options.MaxBatchItems;
            return TypedResults.Problem(problem);
        }

        var caller = CryptoCaller.Of(http.User);
        using var ciphers = new ColumnCiphers(encryption.Keyring, encryption.SubjectKeys);
        var results = new BatchResult<TResponse>[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            http.RequestAborted.ThrowIfCancellationRequested();
            var outcome = items[i] is { } item
                ? await one(item, caller, ciphers)
                : ItemProblem.Invalid(new Dictionary<string, string[]> { [""] = ["the item is null: each item is a request shaped as the single call's."] });
            results[i] = outcome.Problem is { } error
                ? new BatchResult<TResponse>(i, null, ToBatchError(i, error))
                : new BatchResult<TResponse>(i, outcome.Value, null);
        }

        return TypedResults.Ok(new BatchResponse<TResponse>(results));
    }

    /// <summary>The item's problem with its fields named from the batch's root (<c>items[3].rowId</c>).</summary>
    private static BatchError ToBatchError(int index, ItemProblem problem)
    {
        var root = string.Create(CultureInfo.InvariantCulture, $"items[{index}]");
        var errors = problem.Errors.Count == 0
            ? new Dictionary<string, string[]> { [root] = [problem.Detail ?? problem.Title] }
            : problem.Errors.ToDictionary(e => e.Key.Length == 0 ? root : $"{root}.{e.Key}", e => e.Value, StringComparer.Ordinal);
        var detail = string.Join(" ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}"));
        return new BatchError(problem.Status, problem.Title, detail, errors, problem.Reason);
    }
}

/// <summary>
/// The body limit of the batch endpoints, read from the validated settings when a request comes (endpoints are mapped
/// before start-up validates them).
/// </summary>
internal sealed class BatchSizeLimit(IServiceProvider services) : IRequestSizeLimitMetadata
{
    public long? MaxRequestBodySize => services.GetRequiredService<IOptions<CryptoServiceOptions>>().Value.MaxBatchRequestBytes;
}

/// <summary>Limits of the encryption service's batch endpoints (<c>Crypto:Service</c>).</summary>
internal sealed class CryptoServiceOptions
{
    public const string Section = "Crypto:Service";

    /// <summary>Most items one batch may hold; a larger batch is refused whole (413 naming the limit).</summary>
    public int MaxBatchItems { get; set; } = 1000;

    /// <summary>Largest batch body in bytes (413 beyond, before it is read). Default 4 MiB.</summary>
    public long MaxBatchRequestBytes { get; set; } = 4 * 1024 * 1024;
}

/// <summary>Start-up check of <c>Crypto:Service</c> (exit 78 naming the setting).</summary>
internal sealed class CryptoServiceOptionsValidator : IValidateOptions<CryptoServiceOptions>
{
    /// <summary>Far above any CRM page or sync chunk; a larger batch only holds a request thread longer.</summary>
    public const int MaxBatchItemsCeiling = 100_000;

    /// <summary>Ceiling of <see cref="CryptoServiceOptions.MaxBatchRequestBytes"/>: 256 MiB.</summary>
    public const long MaxBatchRequestBytesCeiling = 256L * 1024 * 1024;

    public ValidateOptionsResult Validate(string? name, CryptoServiceOptions options)
    {
        var errors = new List<string>();
        if (options.MaxBatchItems is < 1 or > MaxBatchItemsCeiling)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"Crypto:Service:MaxBatchItems must be from 1 to {MaxBatchItemsCeiling}."));
        }

        if (options.MaxBatchRequestBytes < CryptoServiceEndpoints.MaxRequestBytes || options.MaxBatchRequestBytes > MaxBatchRequestBytesCeiling)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"Crypto:Service:MaxBatchRequestBytes must be from {CryptoServiceEndpoints.MaxRequestBytes} (one single call's limit) to {MaxBatchRequestBytesCeiling}."));
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
