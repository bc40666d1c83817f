using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.CrmAuthorization;

/// <summary>Names used by <see cref="CrmAuthorizationExtensions"/>.</summary>
public static class CrmAuthorizationDefaults
{
    /// <summary>The JwtBearer authentication scheme that validates the CRM security service's access tokens.</summary>
    public const string Scheme = "CrmSecurity";
}

/// <summary>One call for a CRM app on ASP.NET Core: token validation, "requires contact:read" and field masking.</summary>
public static class CrmAuthorizationExtensions
{
    /// <summary>
    /// Validates access tokens of the CRM security service (JwtBearer against its discovery document, RFC 9068
    /// <c>at+jwt</c> only, audience <see cref="CrmAuthorizationOptions.Audience"/>, claim names as issued) as the
    /// default scheme, and registers <see cref="CrmDecisions"/>, the permission policies and field masking.
    /// </summary>
    public static IServiceCollection AddCrmAuthorization(this IServiceCollection services, Action<CrmAuthorizationOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<CrmAuthorizationOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CrmAuthorizationOptions>, CrmAuthorizationOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddHttpClient(CrmDecisions.HttpClientName);
        services.TryAddSingleton(provider => new CrmDecisions(
            provider.GetRequiredService<IHttpClientFactory>(),
            provider.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>(),
            provider.GetRequiredService<IOptions<CrmAuthorizationOptions>>(),
            provider.GetRequiredService<TimeProvider>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAuthorizationHandler, CrmPermissionHandler>());
        // A refusal for want of a step-up is answered with the challenge that gets one; every other result by the handler the
        // app registered (decorated, not replaced: its own 403 page or problem details stay), or by ASP.NET Core's.
        DecorateResultHandler(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<OpenIdConnectOptions>, OpenIdConnectStepUp>());

        services.AddAuthentication(CrmAuthorizationDefaults.Scheme).AddJwtBearer(CrmAuthorizationDefaults.Scheme, _ => { });
        services.AddOptions<JwtBearerOptions>(CrmAuthorizationDefaults.Scheme).Configure<IOptions<CrmAuthorizationOptions>>((bearer, crm) =>
        {
            var options = crm.Value;
            bearer.Authority = options.Issuer?.AbsoluteUri;
            bearer.Audience = options.Audience;
            bearer.RequireHttpsMetadata = options.RequireHttps;
            bearer.MapInboundClaims = false; // keep sub, role, perm_ver as issued
            bearer.TokenValidationParameters.ValidTypes = ["at+jwt"]; // RFC 9068 §4: refuse ID tokens and other JWTs
            bearer.TokenValidationParameters.NameClaimType = "name";
            bearer.TokenValidationParameters.RoleClaimType = "role";
        });
        services.AddAuthorization();
        return services;
    }

    /// <summary>
    /// Replaces the app's <see cref="IAuthorizationMiddlewareResultHandler"/> registration (the last one, the one ASP.NET
    /// Core resolves) by <see cref="CrmStepUpResultHandler"/> around it, with the same lifetime; without one, around ASP.NET
    /// Core's default. Calling <c>AddCrmAuthorization</c> twice decorates once.
    /// </summary>
    private static void DecorateResultHandler(IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(StepUpDecorated)))
        {
            return;
        }

        services.AddSingleton<StepUpDecorated>();
        var app = services.LastOrDefault(d => d.ServiceType == typeof(IAuthorizationMiddlewareResultHandler) && !d.IsKeyedService);
        services.RemoveAll<IAuthorizationMiddlewareResultHandler>();
        services.Add(ServiceDescriptor.Describe(typeof(IAuthorizationMiddlewareResultHandler), provider => new CrmStepUpResultHandler(
            app is null ? new AuthorizationMiddlewareResultHandler() : Inner(provider, app),
            provider.GetRequiredService<IAuthenticationSchemeProvider>(),
            provider.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>(),
            provider.GetRequiredService<ILogger<CrmStepUpResultHandler>>()), app?.Lifetime ?? ServiceLifetime.Singleton));
    }

    private static IAuthorizationMiddlewareResultHandler Inner(IServiceProvider provider, ServiceDescriptor app) =>
        (IAuthorizationMiddlewareResultHandler)(app.ImplementationInstance
            ?? app.ImplementationFactory?.Invoke(provider)
            ?? ActivatorUtilities.CreateInstance(provider, app.ImplementationType!));

    /// <summary>Marks a service collection whose result handler <see cref="DecorateResultHandler"/> has decorated.</summary>
    private sealed class StepUpDecorated;

    /// <summary>
    /// The endpoint requires an authenticated user who holds <paramref name="action"/> on <paramref name="entity"/> at
    /// some depth (deny by default). Whether one record is within that depth is <see cref="CrmAccessProfile.Check"/>'s.
    /// </summary>
    public static TBuilder RequireCrmPermission<TBuilder>(this TBuilder builder, string entity, string action)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentException.ThrowIfNullOrEmpty(entity);
        if (!CrmNames.TryParseAction(action, out var parsed))
        {
            throw new ArgumentException($"Unknown action '{action}' (use one of {CrmNames.ActionList}).", nameof(action));
        }

        return builder.RequireCrmPermission(entity, parsed);
    }

    /// <summary>The endpoint requires <paramref name="action"/> on <paramref name="entity"/>.</summary>
    public static TBuilder RequireCrmPermission<TBuilder>(this TBuilder builder, string entity, CrmAction action)
        where TBuilder : IEndpointConventionBuilder
    {
        var policy = new AuthorizationPolicyBuilder(CrmAuthorizationDefaults.Scheme)
            .RequireAuthenticatedUser()
            .AddRequirements(new CrmPermissionRequirement(entity, action))
            .Build();
        return builder.RequireAuthorization(policy);
    }

    /// <summary>
    /// Masks the endpoint's successful response (an object of <paramref name="entity"/>, or a list of them) by the
    /// user's field profile: hidden fields and properties the entity does not declare are removed, masked fields show
    /// a mask, read and update fields pass.
    /// </summary>
    public static TBuilder WithCrmFieldMasking<TBuilder>(this TBuilder builder, string entity)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentException.ThrowIfNullOrEmpty(entity);
        return builder.AddEndpointFilter(new CrmFieldMaskingFilter(entity));
    }

    /// <summary>The signed-in user's profile (cached per <c>perm_ver</c>), for record checks in a handler.</summary>
    public static Task<CrmAccessProfile> GetCrmProfileAsync(this HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        return http.RequestServices.GetRequiredService<CrmDecisions>().ProfileAsync(http.User, http.RequestAborted);
    }
}
