using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CrmSecurity.CrmAuthorization;

/// <summary>"Requires <see cref="Entity"/>:<see cref="Action"/>": the user holds the privilege at some depth.</summary>
public sealed record CrmPermissionRequirement(string Entity, CrmAction Action) : IAuthorizationRequirement
{
    /// <summary>As the policy reads: <c>contact:read</c>.</summary>
    public override string ToString() => $"{Entity}:{Action.Name()}";
}

/// <summary>Decides <see cref="CrmPermissionRequirement"/> on the user's profile; anything unanswered is a denial.</summary>
internal sealed partial class CrmPermissionHandler(CrmDecisions decisions, ILogger<CrmPermissionHandler> logger) : AuthorizationHandler<CrmPermissionRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, CrmPermissionRequirement requirement)
    {
        var cancellation = (context.Resource as HttpContext)?.RequestAborted ?? default;
        CrmAccessProfile profile;
        try
        {
            profile = await decisions.ProfileAsync(context.User, cancellation);
        }
        catch (CrmDecisionException e)
        {
            LogUndecided(logger, requirement.ToString(), e.Message);
            context.Fail(new AuthorizationFailureReason(this, e.Message));
            return;
        }

        if (profile.Holds(requirement.Entity, requirement.Action))
        {
            context.Succeed(requirement);
        }
        else
        {
            context.Fail(new AuthorizationFailureReason(this, $"No role of the user grants {requirement}."));
        }
    }

    [LoggerMessage(EventId = 4600, Level = LogLevel.Warning, Message = "Denied {Requirement}: the decision API gave no answer ({Reason})")]
    private static partial void LogUndecided(ILogger logger, string requirement, string reason);
}
