using Microsoft.Extensions.Options;

namespace CrmSecurity.CrmAuthorization;

/// <summary>Settings of <see cref="CrmAuthorizationExtensions.AddCrmAuthorization"/>, validated when the app starts.</summary>
public sealed class CrmAuthorizationOptions
{
    /// <summary>The issuer of the CRM security service (<c>https://login.example.com/</c>); its discovery document gives keys and token endpoint.</summary>
    public Uri? Issuer { get; set; }

    /// <summary>The audience this CRM API accepts (the scope <c>crm.api</c> grants <c>crm-api</c>).</summary>
    public string Audience { get; set; } = "crm-api";

    /// <summary>The CRM app's confidential client, allowed scope <see cref="DecisionScope"/>, that asks the decision API.</summary>
    public string? ClientId { get; set; }

    /// <summary>Its secret (from a secret store; never logged).</summary>
    public string? ClientSecret { get; set; }

    /// <summary>The scope of the decision API.</summary>
    public string DecisionScope { get; set; } = "authz.decide";

    /// <summary>Where the decision API is; empty: <c>authz/v1/</c> under the issuer.</summary>
    public Uri? DecisionApi { get; set; }

    /// <summary>
    /// Bind the app's own decision-API token to a key only this process holds (DPoP, RFC 9449): the token request and every
    /// call to the decision API carry a proof signed with it, and a server nonce is honoured (§8). Needed when the app's
    /// client is registered with <c>RequireDpop</c>.
    /// </summary>
    public bool UseDpop { get; set; }

    /// <summary>
    /// The <c>acr</c> value asked for (<c>acr_values</c>) when a decision obliges a step-up to <c>mfa</c>: the service's
    /// MFA class, <c>urn:crm-security:acr:mfa</c>, as its discovery document lists it in <c>acr_values_supported</c>.
    /// </summary>
    public string MfaAcr { get; set; } = "urn:crm-security:acr:mfa";

    /// <summary>
    /// How recent the user's sign-in (<c>auth_time</c>) must be to meet a step-up; the challenge asks for it as
    /// <c>max_age</c>. Null: any sign-in of the session with a second factor meets it.
    /// </summary>
    public TimeSpan? StepUpMaxAge { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>Refuse a plain-HTTP issuer (OAuth 2.0 needs TLS, RFC 6749 §3.1). Off only for loopback tests.</summary>
    public bool RequireHttps { get; set; } = true;

    /// <summary>
    /// How long a cached profile is used before it is revalidated with the service (a cheap 304 when unchanged).
    /// A token with a newer <c>perm_ver</c> than the cached profile always fetches at once.
    /// </summary>
    public TimeSpan ProfileRevalidation { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most profiles kept in memory; beyond it the cache starts over.</summary>
    public int MaxCachedProfiles { get; set; } = 10_000;

    /// <summary>
    /// Response properties that are not fields of the entity but pass masking unchanged (keys, owners). Every other
    /// property the entity does not declare is removed: masking is deny by default.
    /// </summary>
    public ISet<string> UnsecuredProperties { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "id", "owner", "owner_id", "business_unit", "business_unit_id" };
}

/// <summary>Fails start-up with a message naming the setting and the fix.</summary>
internal sealed class CrmAuthorizationOptionsValidator : IValidateOptions<CrmAuthorizationOptions>
{
    public ValidateOptionsResult Validate(string? name, CrmAuthorizationOptions options)
    {
        var errors = new List<string>();
        if (options.Issuer is not { IsAbsoluteUri: true } issuer)
        {
            errors.Add("CrmAuthorization:Issuer must be the absolute address of the CRM security service, e.g. https://login.example.com/.");
        }
        else if (options.RequireHttps && issuer.Scheme != Uri.UriSchemeHttps)
        {
            errors.Add($"CrmAuthorization:Issuer '{issuer}' is not https; OAuth 2.0 requires TLS (RFC 6749 §3.1). Set RequireHttps to false only for loopback tests.");
        }

        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            errors.Add("CrmAuthorization:Audience is empty; set the audience of this API (crm-api).");
        }

        if (string.IsNullOrWhiteSpace(options.ClientId) || string.IsNullOrEmpty(options.ClientSecret))
        {
            errors.Add("CrmAuthorization:ClientId and ClientSecret are needed to ask the decision API; register a confidential client with scope authz.decide.");
        }

        if (options.ProfileRevalidation < TimeSpan.Zero)
        {
            errors.Add("CrmAuthorization:ProfileRevalidation must not be negative.");
        }

        if (string.IsNullOrWhiteSpace(options.MfaAcr))
        {
            errors.Add("CrmAuthorization:MfaAcr is empty; set the service's MFA acr value (urn:crm-security:acr:mfa).");
        }

        if (options.StepUpMaxAge is { } maxAge && maxAge < TimeSpan.FromSeconds(1))
        {
            errors.Add("CrmAuthorization:StepUpMaxAge must be at least 1 second (max_age is in seconds), or empty for no limit.");
        }

        if (options.MaxCachedProfiles < 1)
        {
            errors.Add("CrmAuthorization:MaxCachedProfiles must be at least 1.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
