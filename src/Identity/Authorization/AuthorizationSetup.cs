using CrmSecurity.Identity.Authorization.Decisions;
using CrmSecurity.Identity.Authorization.Policies;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Data;
using CrmSecurity.Shared;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Authorization;

/// <summary>Registers the authorization model: policy files (validated at start), the snapshot holder, changes, refresh.</summary>
internal static class AuthorizationSetup
{
    public static IServiceCollection AddAuthorizationModel(this IServiceCollection services)
    {
        services.AddSingleton<IValidateOptions<IdentitySettings>, PolicyDirectoryValidator>();
        services.AddSingleton(provider =>
        {
            var settings = provider.GetRequiredService<IOptions<IdentitySettings>>().Value;
            try
            {
                return PolicyFiles.Load(settings.Authorization.ResolvedPolicyDirectory);
            }
            catch (PolicyException e)
            {
                // Reported like every other bad setting: exit code 78 and one line per problem.
                throw new OptionsValidationException(IdentitySettings.Section, typeof(IdentitySettings), PolicyDirectoryValidator.Lines(e));
            }
        });
        services.AddSingleton<AuthorizationModel>();
        services.AddScoped<ModelChanges>();
        services.TryAddSingleton<IdentitySecrets>();
        services.AddSingleton<AuditTrailWriter>();
        services.AddDecisionApi();
        return services;
    }

    /// <summary>Loading the model comes after the signing keys and before demo data and configured clients.</summary>
    public static IServiceCollection AddAuthorizationStartup(this IServiceCollection services)
    {
        services.AddHostedService<AuthorizationStartup>();
        return services;
    }

    public static IServiceCollection AddAuthorizationRefresh(this IServiceCollection services)
    {
        services.AddHostedService<AuthorizationRefresher>();
        return services;
    }
}

/// <summary>A bad policy file stops start-up (exit code 78) with file, line and problem.</summary>
internal sealed class PolicyDirectoryValidator : IValidateOptions<IdentitySettings>
{
    public ValidateOptionsResult Validate(string? name, IdentitySettings settings)
    {
        try
        {
            PolicyFiles.Load(settings.Authorization.ResolvedPolicyDirectory);
            return ValidateOptionsResult.Success;
        }
        catch (PolicyException e)
        {
            return ValidateOptionsResult.Fail(Lines(e));
        }
    }
    public static IEnumerable<string> Lines(PolicyException e) =>
        e.Problems.Select(problem => $"Identity:Authorization:PolicyDirectory: {problem}");

}
