using CrmSecurity.Crypto.Fields;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace CrmSecurity.Crypto.Service;

/// <summary>
/// Why one value was not served: what a single call answers as problem details (RFC 9457) and a batch as that item's
/// <c>error</c>. It never holds a value, only names of fields and the reason.
/// </summary>
/// <param name="Status">The HTTP status a single call answers with.</param>
/// <param name="Title">The problem's title.</param>
/// <param name="Detail">What was wrong, or null for a validation problem (its <paramref name="Errors"/> say it).</param>
/// <param name="Errors">Messages by request field (<c>rowId</c>, <c>record.shares[0].kind</c>, ...).</param>
/// <param name="Reason">For a value that could not be decrypted, the <see cref="DecryptFailureReason"/>.</param>
internal sealed record ItemProblem(int Status, string Title, string? Detail, Dictionary<string, string[]> Errors, string? Reason = null)
{
    /// <summary>400: the request is malformed; the errors name each field at fault.</summary>
    public static ItemProblem Invalid(Dictionary<string, string[]> errors) =>
        new(StatusCodes.Status400BadRequest, "One or more validation errors occurred.", null, errors);

    /// <summary>403 naming <c>tenant</c>: the token (and the client it was issued to) is not bound to the tenant asked for.</summary>
    public static ItemProblem TenantRefused(string reason) =>
        new(StatusCodes.Status403Forbidden, "Tenant refused", $"tenant: {reason}.", new() { ["tenant"] = [reason] });

    /// <summary>422 naming the field that does not match (row, column) or the ciphertext, with the reason.</summary>
    public static ItemProblem NotDecrypted(FieldDecryptionException e)
    {
        var field = e.Reason switch
        {
            DecryptFailureReason.RowMismatch => "rowId",
            DecryptFailureReason.ColumnMismatch => "column",
            _ => "ciphertext",
        };
        return new(StatusCodes.Status422UnprocessableEntity, "The ciphertext could not be decrypted", $"{field}: {e.Message}", new() { [field] = [e.Message] }, e.Reason.ToString());
    }

    /// <summary>409 naming <c>subject</c>: the data subject was shredded, so nothing new is encrypted for it.</summary>
    public static ItemProblem SubjectShredded(FieldDecryptionException e) =>
        new(StatusCodes.Status409Conflict, "Data subject shredded", $"subject: {e.Message}", new() { ["subject"] = [e.Message] }, e.Reason.ToString());

    /// <summary>The answer of a call whose success is <typeparamref name="T"/>: this problem.</summary>
    public Results<Ok<T>, ValidationProblem, ProblemHttpResult> ToResult<T>()
        where T : class => new ItemOutcome<T>(null, this).ToResult();

    /// <summary>The problem details of a single call.</summary>
    public ProblemDetails ToProblemDetails()
    {
        var problem = Errors.Count > 0 ? new HttpValidationProblemDetails(Errors) : new ProblemDetails();
        problem.Status = Status;
        problem.Title = Title;
        problem.Detail = Detail;
        if (Reason is not null)
        {
            problem.Extensions["reason"] = Reason;
        }

        return problem;
    }
}

/// <summary>The answer for one value: the single call's response, or why not.</summary>
/// <typeparam name="T">The single call's response.</typeparam>
internal readonly record struct ItemOutcome<T>(T? Value, ItemProblem? Problem)
    where T : class
{
    public static implicit operator ItemOutcome<T>(T value) => new(value, null);

    public static implicit operator ItemOutcome<T>(ItemProblem problem) => new(null, problem);

    /// <summary>The single call's answer: 200 with the value, a validation problem, or the problem.</summary>
    public Results<Ok<T>, ValidationProblem, ProblemHttpResult> ToResult() => Problem switch
    {
        null => TypedResults.Ok(Value!),
        { Status: StatusCodes.Status400BadRequest } invalid => TypedResults.ValidationProblem(invalid.Errors),
        { } problem => TypedResults.Problem(problem.ToProblemDetails()),
    };
}
