using System.Text.Json.Serialization;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Store;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CrmSecurity.Identity.Incident;

internal sealed record IncidentRequest([property: JsonPropertyName("reason")] string? Reason);

/// <summary>
/// Incident-response calls: a bearer access token of this server with the <c>identity.admin</c> scope (audience
/// <c>crm-security-identity</c>). The scope only opens the door; what the caller may do comes from the authorization
/// model, exactly as for the admin API (red-team finding 5): the same <see cref="AdminGuard"/> (an enabled user or
/// application user of the model, decided on the current snapshot, never a <c>role</c> claim), the same privileges
/// (<c>update</c> on <c>system_user</c> covering the target's business unit; <c>update</c> on <c>oidc_client</c> at
/// organization depth for a client), and the same <see cref="AdminOperations"/>: one model change with its hash-chained
/// audit entry, the revocation inside the same transaction.
/// </summary>
internal static class IncidentEndpoints
{
    public const string Policy = "identity.admin";
    public const string AdminScope = "identity.admin";
    public const string AdminAudience = "crm-security-identity";

    /// <summary>A reason longer than this is refused (it is stored in the audit trail and the access events).</summary>
    public const int MaxReasonLength = 500;

    public static IEndpointRouteBuilder MapIncidentEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/identity/admin").RequireAuthorization(Policy).DisableAntiforgery()
            .AddEndpointFilter(new RefusedAdminCalls("incident_response"))
            .AddEndpointFilter<CrmSecurity.Identity.Admin.AdminSecondFactor>();
        group.MapPost("/users/{userId}/revoke", (string userId, HttpContext http) =>
            RunAsync(http, (guard, operations, reason, cancellationToken) => operations.RevokeUserAsync(guard, userId, reason, cancellationToken)));
        group.MapPost("/users/{userId}/disable", (string userId, HttpContext http) =>
            RunAsync(http, (guard, operations, reason, cancellationToken) => operations.SetUserDisabledAsync(guard, userId, disabled: true, reason, cancellationToken)));
        group.MapPost("/users/{userId}/enable", (string userId, HttpContext http) =>
            RunAsync(http, (guard, operations, reason, cancellationToken) => operations.SetUserDisabledAsync(guard, userId, disabled: false, reason, cancellationToken)));
        group.MapPost("/clients/{clientId}/revoke", (string clientId, HttpContext http) =>
            RunAsync(http, (guard, operations, reason, cancellationToken) => operations.RevokeClientAsync(guard, clientId, reason, cancellationToken)));
        return endpoints;
    }

    private static async Task<IResult> RunAsync(
        HttpContext http, Func<AdminGuard, AdminOperations, string?, CancellationToken, Task<(RevocationSummary? Summary, AdminProblem? Problem)>> action)
    {
        // Deny by default: the caller must be an enabled user (or a client's application user) of the current model.
        var model = http.RequestServices.GetRequiredService<AuthorizationModel>();
        if (AdminGuard.For(model.Current, http.User, http.Connection.RemoteIpAddress?.ToString()) is not { } guard)
        {
            return Problem(AdminProblem.Forbidden("The token's subject is not an enabled user or application user of the model; incident-response rights come from its roles."));
        }

        string? reason = null;
        if (http.Request.ContentLength > 0 || http.Request.Headers.TransferEncoding.Count > 0)
        {
            var (body, bad) = await JsonBody.ReadAsync<IncidentRequest>(http);
            if (bad is not null)
            {
                return bad;
            }

            reason = body!.Reason;
        }

        if (reason is { Length: > MaxReasonLength })
        {
            return Problem(AdminProblem.Invalid("reason", $"reason is longer than {MaxReasonLength} characters."));
        }

        var (summary, problem) = await action(guard, http.RequestServices.GetRequiredService<AdminOperations>(), reason, http.RequestAborted);
        return problem is not null ? Problem(problem) : TypedResults.Ok(summary);
    }

    private static ProblemHttpResult Problem(AdminProblem problem) => TypedResults.Problem(problem.ToProblemDetails());
}
