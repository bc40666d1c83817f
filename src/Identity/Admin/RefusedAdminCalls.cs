using System.Security.Claims;
using CrmSecurity.Identity.Events;
using Microsoft.AspNetCore.Http.HttpResults;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// Every admin or incident-response call the model refuses (403) is an access event too: <c>admin_change</c> with outcome
/// <c>denied</c>, who asked, from where, and what was refused (OWASP ASVS 4.0.3 V7.2.2: failed access-control decisions
/// are logged), so an admin probing beyond their rights shows up in the analyzer and the SIEM, not only in their browser.
/// </summary>
internal sealed class RefusedAdminCalls(string area) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var result = await next(context);
        if (result is IStatusCodeHttpResult { StatusCode: StatusCodes.Status403Forbidden })
        {
            var http = context.HttpContext;
            var events = http.RequestServices.GetRequiredService<AccessEvents>();
            var detail = result is ProblemHttpResult problem ? problem.ProblemDetails.Detail : null;
            await events.WriteAsync(new AccessEvent
            {
                Timestamp = events.Time.GetUtcNow(),
                UserId = http.User.FindFirst(Claims.Subject)?.Value ?? http.User.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? "unknown",
                UserName = http.User.FindFirst(Claims.Name)?.Value,
                Action = AccessActions.AdminChange,
                ClientId = http.User.FindFirst(Claims.ClientId)?.Value,
                SourceIp = http.Connection.RemoteIpAddress?.ToString(),
                Outcome = Outcomes.Denied,
                Privilege = area,
                Details = $"{http.Request.Method} {http.Request.Path}: {detail}",
            }, http.RequestAborted);
        }

        return result;
    }
}
