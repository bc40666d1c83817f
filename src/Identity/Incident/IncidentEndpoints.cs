using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Incident;

internal sealed record IncidentRequest(string? Reason);

/// <summary>
/// Incident-response calls for security admins: a bearer access token from this server with the
/// <c>identity.admin</c> scope (audience <c>crm-security-identity</c>), and, when the token is a user's, the
/// <c>security_admin</c> role. Issue 5 builds the full admin API next to these.
/// </summary>
internal static class IncidentEndpoints
{
    public const string Policy = "identity.admin";
    public const string AdminScope = "identity.admin";
    public const string AdminAudience = "crm-security-identity";
    public const string AdminRole = "security_admin";

    public static IEndpointRouteBuilder MapIncidentEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/identity/admin").RequireAuthorization(Policy).DisableAntiforgery();
        group.MapPost("/users/{userId}/revoke", RevokeUserAsync);
        group.MapPost("/users/{userId}/disable", DisableUserAsync);
        group.MapPost("/users/{userId}/enable", EnableUserAsync);
        group.MapPost("/clients/{clientId}/revoke", RevokeClientAsync);
        return endpoints;
    }

    private static async Task<Results<Ok<RevocationSummary>, NotFound<ProblemDetails>>> RevokeUserAsync(
        string userId, [FromBody] IncidentRequest? body, ClaimsPrincipal caller, IncidentResponse incidents, CancellationToken cancellationToken) =>
        Found(await incidents.RevokeUserAsync(userId, Actor(caller), body?.Reason ?? "", cancellationToken), "user", userId);

    private static async Task<Results<Ok<RevocationSummary>, NotFound<ProblemDetails>>> DisableUserAsync(
        string userId, [FromBody] IncidentRequest? body, ClaimsPrincipal caller, IncidentResponse incidents, CancellationToken cancellationToken) =>
        Found(await incidents.SetDisabledAsync(userId, disabled: true, Actor(caller), body?.Reason ?? "", cancellationToken), "user", userId);

    private static async Task<Results<Ok<RevocationSummary>, NotFound<ProblemDetails>>> EnableUserAsync(
        string userId, [FromBody] IncidentRequest? body, ClaimsPrincipal caller, IncidentResponse incidents, CancellationToken cancellationToken) =>
        Found(await incidents.SetDisabledAsync(userId, disabled: false, Actor(caller), body?.Reason ?? "", cancellationToken), "user", userId);

    private static async Task<Results<Ok<RevocationSummary>, NotFound<ProblemDetails>>> RevokeClientAsync(
        string clientId, [FromBody] IncidentRequest? body, ClaimsPrincipal caller, IncidentResponse incidents, CancellationToken cancellationToken) =>
        Found(await incidents.RevokeClientAsync(clientId, Actor(caller), body?.Reason ?? "", cancellationToken), "client", clientId);

    private static Results<Ok<RevocationSummary>, NotFound<ProblemDetails>> Found(RevocationSummary? summary, string kind, string id) =>
        summary is null
            ? TypedResults.NotFound(new ProblemDetails { Title = $"No such {kind}", Detail = $"There is no {kind} '{id}'.", Status = 404 })
            : TypedResults.Ok(summary);

    private static string Actor(ClaimsPrincipal caller) => caller.FindFirst(Claims.Subject)?.Value ?? caller.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? "unknown";

    /// <summary>Scope <c>identity.admin</c>, and the admin role unless the token is a client's own (sub = client_id).</summary>
    public static bool IsAdmin(ClaimsPrincipal principal)
    {
        var scopes = (principal.FindFirst(Claims.Scope)?.Value ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (!scopes.Contains(AdminScope, StringComparer.Ordinal))
        {
            return false;
        }

        var subject = principal.FindFirst(Claims.Subject)?.Value ?? principal.FindFirst(ClaimTypes.NameIdentifier)?.Value;
        var client = principal.FindFirst(Claims.ClientId)?.Value;
        var isClientToken = subject is not null && subject == client;
        return isClientToken || principal.FindAll(Claims.Role).Concat(principal.FindAll(ClaimTypes.Role)).Any(role => role.Value == AdminRole);
    }
}
