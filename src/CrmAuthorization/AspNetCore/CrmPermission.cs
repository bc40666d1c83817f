using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.CrmAuthorization;

/// <summary>"Requires <see cref="Entity"/>:<see cref="Action"/>": the user holds the privilege at some depth.</summary>
public sealed record CrmPermissionRequirement(string Entity, CrmAction Action) : IAuthorizationRequirement
{
    /// <summary>As the policy reads: <c>contact:read</c>.</summary>
    public override string ToString() => $"{Entity}:{Action.Name()}";
}

/// <summary>
/// Decides <see cref="CrmPermissionRequirement"/>: the privilege on the user's profile (local), then the service's check,
/// which carries what risk does to the decision: a refusal, or an obligation the app must meet before acting on the allow.
/// An unmet <c>step_up</c> fails with <see cref="StepUpFailure"/> (answered as a challenge by <see cref="CrmStepUpResultHandler"/>);
/// an obligation this library does not know fails too. Anything unanswered is a denial.
/// </summary>
internal sealed partial class CrmPermissionHandler(CrmDecisions decisions, IOptions<CrmAuthorizationOptions> options, TimeProvider time, ILogger<CrmPermissionHandler> logger)
    : AuthorizationHandler<CrmPermissionRequirement>
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

        if (!profile.Holds(requirement.Entity, requirement.Action))
        {
            context.Fail(new AuthorizationFailureReason(this, $"No role of the user grants {requirement}."));
            return;
        }

        CheckResponse decision;
        try
        {
            decision = await decisions.CheckAsync(context.User, requirement.Entity, requirement.Action, record: null, cancellation);
        }
        catch (CrmDecisionException e)
        {
            LogUndecided(logger, requirement.ToString(), e.Message);
            context.Fail(new AuthorizationFailureReason(this, e.Message));
            return;
        }

        if (!decision.Allowed)
        {
            context.Fail(new AuthorizationFailureReason(this, decision.Reason));
            return;
        }

        var settings = options.Value;
        foreach (var obligation in decision.Obligations ?? [])
        {
            if (obligation is { Type: StepUpRule.Obligation, Value: StepUpRule.Mfa })
            {
                if (!StepUpRule.IsMet(context.User, settings, time.GetUtcNow()))
                {
                    // The allow is not acted on until the user has stepped up (docs/risk-access.md).
                    context.Fail(new StepUpFailure(this, requirement, $"{requirement} is allowed only after a step-up to a second factor: {obligation.Reason}", settings.MfaAcr, settings.StepUpMaxAge));
                    return;
                }
            }
            else
            {
                // An obligation the app cannot meet makes the allow unusable: deny (XACML 3.0 §7.18, a PEP that does not
                // understand an obligation must not grant access).
                LogUnknownObligation(logger, requirement.ToString(), obligation.Type);
                context.Fail(new AuthorizationFailureReason(this, $"{requirement} carries obligation '{obligation.Type}' this app cannot meet."));
                return;
            }
        }

        context.Succeed(requirement);
    }

    [LoggerMessage(EventId = 4603, Level = LogLevel.Warning, Message = "Denied {Requirement}: the decision obliges {Obligation}, which this library cannot meet")]
    private static partial void LogUnknownObligation(ILogger logger, string requirement, string obligation);

    [LoggerMessage(EventId = 4600, Level = LogLevel.Warning, Message = "Denied {Requirement}: the decision API gave no answer ({Reason})")]
    private static partial void LogUndecided(ILogger logger, string requirement, string reason);
}
