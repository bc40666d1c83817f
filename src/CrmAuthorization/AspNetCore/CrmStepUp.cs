using System.Globalization;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.CrmAuthorization;

/// <summary>
/// Whether the user's current authentication meets a decision's <c>step_up</c> obligation: a second factor (RFC 8176
/// <c>amr</c> <c>mfa</c>, or the service's MFA <c>acr</c>, OpenID Connect Core §2) at a sign-in no older than
/// <see cref="CrmAuthorizationOptions.StepUpMaxAge"/> (<c>auth_time</c>). Anything missing or unreadable is not met.
/// </summary>
internal static class StepUpRule
{
    public const string Obligation = "step_up";
    public const string Mfa = "mfa";

    public static bool IsMet(ClaimsPrincipal user, CrmAuthorizationOptions options, DateTimeOffset now)
    {
        var mfa = user.FindAll("amr").Any(c => string.Equals(c.Value, Mfa, StringComparison.Ordinal))
            || user.FindAll("acr").Any(c => string.Equals(c.Value, options.MfaAcr, StringComparison.Ordinal));
        if (!mfa)
        {
            return false;
        }

        if (options.StepUpMaxAge is not { } maxAge)
        {
            return true;
        }

        // OpenID Connect Core §2 auth_time: seconds since the epoch of the user's last active authentication.
        return long.TryParse(user.FindFirst("auth_time")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            && now - DateTimeOffset.FromUnixTimeSeconds(seconds) <= maxAge;
    }
}

/// <summary>The failure a <see cref="CrmPermissionHandler"/> gives when the allow obliges a step-up the user has not made.</summary>
internal sealed class StepUpFailure(IAuthorizationHandler handler, IAuthorizationRequirement requirement, string message, string acr, TimeSpan? maxAge)
    : AuthorizationFailureReason(handler, message)
{
    /// <summary>The requirement a step-up would meet.</summary>
    public IAuthorizationRequirement Requirement { get; } = requirement;

    public string Acr { get; } = acr;

    public TimeSpan? MaxAge { get; } = maxAge;
}

/// <summary>
/// Turns a refusal for want of a step-up into the challenge that gets one, and leaves every other result to the handler it
/// decorates: the one the app registered before <c>AddCrmAuthorization</c>, or ASP.NET Core's own. A bearer (API) caller gets 401 with <c>error="insufficient_user_authentication"</c> and the
/// <c>acr_values</c> (and <c>max_age</c>) to ask for (RFC 9470 §3); an interactive app's challenge scheme (OpenID Connect)
/// is challenged again with them, so the user re-runs the sign-in at the service with a second factor.
/// </summary>
internal sealed partial class CrmStepUpResultHandler(
    IAuthorizationMiddlewareResultHandler inner, IAuthenticationSchemeProvider schemes, IOptionsMonitor<JwtBearerOptions> bearer,
    ILogger<CrmStepUpResultHandler> logger) : IAuthorizationMiddlewareResultHandler
{
    /// <summary>The item of the challenge's properties that <see cref="OpenIdConnectStepUp"/> copies into <c>acr_values</c>.</summary>
    public const string AcrValuesItem = "crm_security.acr_values";

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Succeeded || context.User.Identity?.IsAuthenticated != true || OnlyStepUp(authorizeResult.AuthorizationFailure) is not { } stepUp)
        {
            await inner.HandleAsync(next, context, policy, authorizeResult);
            return;
        }

        // Ask only for what the service says it can do (discovery acr_values_supported, OpenID Connect Discovery 1.0 §3):
        // a value it ignores would bring back the same sign-in, and the user would go round in circles.
        if (!await AdvertisedAsync(stepUp.Acr, context.RequestAborted))
        {
            LogAcrNotAdvertised(logger, stepUp.Acr);
            await inner.HandleAsync(next, context, policy, PolicyAuthorizationResult.Forbid(authorizeResult.AuthorizationFailure));
            return;
        }

        var schemeName = policy.AuthenticationSchemes.Count > 0 ? policy.AuthenticationSchemes[0] : null;
        var scheme = schemeName is null ? await schemes.GetDefaultChallengeSchemeAsync() : await schemes.GetSchemeAsync(schemeName);
        if (scheme is null || typeof(JwtBearerHandler).IsAssignableFrom(scheme.HandlerType))
        {
            // RFC 9470 §3; the scheme the caller used (RFC 9449 §7.1: DPoP for a DPoP-bound token).
            var used = context.Request.Headers.Authorization.ToString().StartsWith("DPoP ", StringComparison.OrdinalIgnoreCase) ? "DPoP" : "Bearer";
            var maxAge = stepUp.MaxAge is { } age ? $", max_age=\"{(long)age.TotalSeconds}\"" : "";
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate =
                $"{used} error=\"insufficient_user_authentication\", error_description=\"A second factor is required for this request\", acr_values=\"{stepUp.Acr}\"{maxAge}";
            LogStepUp(logger, "401 insufficient_user_authentication", context.Request.Path);
            return;
        }

        var properties = new AuthenticationProperties { RedirectUri = context.Request.PathBase + context.Request.Path + context.Request.QueryString };
        properties.Items[AcrValuesItem] = stepUp.Acr;
        if (stepUp.MaxAge is { } fresh)
        {
            // OpenID Connect Core §3.1.2.1 max_age: the service makes the user sign in again when the last sign-in is older.
            properties.SetParameter(OpenIdConnectChallengeProperties.MaxAgeKey, fresh);
        }

        LogStepUp(logger, scheme.Name, context.Request.Path);
        await context.ChallengeAsync(scheme.Name, properties);
    }

    /// <summary>
    /// The step-up to ask for when a step-up is all the request lacks: every failed requirement failed for want of one and
    /// nothing else failed. A policy that also fails for another reason (a page needing <c>contact:read</c>, which obliges
    /// a step-up, and <c>contact:export</c>, which the same finding denies) is refused: a second factor would not change
    /// the answer, and the user would sign in again only to be refused.
    /// </summary>
    private static StepUpFailure? OnlyStepUp(AuthorizationFailure? failure)
    {
        if (failure is null || failure.FailureReasons.Any(r => r is not StepUpFailure))
        {
            return null;
        }

        var stepUps = failure.FailureReasons.OfType<StepUpFailure>().ToList();
        return stepUps.Count > 0 && failure.FailedRequirements.All(r => stepUps.Any(s => ReferenceEquals(s.Requirement, r))) ? stepUps[0] : null;
    }

    private async Task<bool> AdvertisedAsync(string acr, CancellationToken cancellationToken)
    {
        try
        {
            var manager = bearer.Get(CrmAuthorizationDefaults.Scheme).ConfigurationManager;
            return manager is not null && (await manager.GetConfigurationAsync(cancellationToken)).AcrValuesSupported.Contains(acr, StringComparer.Ordinal);
        }
        catch (InvalidOperationException)
        {
            return false; // no discovery document: nothing to ask for, so no step-up (the request stays refused)
        }
    }

    [LoggerMessage(EventId = 4601, Level = LogLevel.Information, Message = "Step-up required before acting on an allow: answered by {Answer} for {Path}")]
    private static partial void LogStepUp(ILogger logger, string answer, PathString path);

    [LoggerMessage(EventId = 4602, Level = LogLevel.Error, Message = "A decision obliges a step-up but the issuer does not advertise acr value {Acr} (acr_values_supported); refused. Set CrmAuthorization:MfaAcr to the service's MFA value")]
    private static partial void LogAcrNotAdvertised(ILogger logger, string acr);
}

/// <summary>
/// Puts the step-up's <c>acr_values</c> into the app's OpenID Connect authorization requests (OpenID Connect Core
/// §3.1.2.1); the stock handler sends <c>max_age</c> from the challenge's properties itself. Chains the app's own event.
/// </summary>
internal sealed class OpenIdConnectStepUp : IPostConfigureOptions<OpenIdConnectOptions>
{
    public void PostConfigure(string? name, OpenIdConnectOptions options)
    {
        options.Events ??= new OpenIdConnectEvents();
        var app = options.Events.OnRedirectToIdentityProvider;
        options.Events.OnRedirectToIdentityProvider = async context =>
        {
            if (context.Properties.Items.TryGetValue(CrmStepUpResultHandler.AcrValuesItem, out var acr) && !string.IsNullOrEmpty(acr))
            {
                context.ProtocolMessage.AcrValues = acr;
            }

            await app(context);
        };
    }
}
