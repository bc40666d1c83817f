using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Federation;

/// <summary>
/// <c>Identity:Federation</c>: upstream OpenID Connect providers people may sign in through (the company's Entra ID, Okta,
/// another instance of this service), one section per provider under <c>Providers:&lt;name&gt;</c> (docs/identity-federation.md).
/// </summary>
internal sealed class FederationSettings
{
    public const string Section = "Identity:Federation";

    /// <summary>The providers by name: the name is the <c>idp</c> claim, part of the callback path and of the scheme.</summary>
    public Dictionary<string, FederationProviderSettings> Providers { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>One upstream OpenID Connect provider.</summary>
internal sealed class FederationProviderSettings
{
    /// <summary>What the sign-in page shows: "Sign in with &lt;DisplayName&gt;".</summary>
    public string? DisplayName { get; set; }

    /// <summary>The provider's issuer; its discovery document is at <c>&lt;Authority&gt;/.well-known/openid-configuration</c>.</summary>
    public string? Authority { get; set; }

    /// <summary>This service's client id at the provider.</summary>
    public string? ClientId { get; set; }

    /// <summary>This service's client secret at the provider (keep it out of files: an environment variable or a secret store).</summary>
    public string? ClientSecret { get; set; }

    /// <summary>Scopes asked for besides <c>openid</c>, e.g. <c>profile</c>, <c>email</c>, and whatever carries the groups claim.</summary>
    public List<string> Scopes { get; set; } = [];

    /// <summary>
    /// An unknown (issuer, subject) creates a user on its first sign-in. Off: only accounts already linked sign in, everyone
    /// else is refused with a page saying so.
    /// </summary>
    public bool JustInTimeCreation { get; set; }

    /// <summary>The business unit (id) users created just in time land in. Required with <see cref="JustInTimeCreation"/>.</summary>
    public string? BusinessUnit { get; set; }

    /// <summary>
    /// Claim-to-role rules. The roles these rules name are managed by the provider: at each sign-in a user holds each of them
    /// exactly when a rule matches; roles no rule names are never granted or taken away by a sign-in.
    /// </summary>
    public List<RoleMappingRule> RoleMappings { get; set; } = [];
}

/// <summary>When the upstream ID token's <see cref="Claim"/> contains <see cref="Value"/>, the user holds <see cref="Role"/>.</summary>
internal sealed class RoleMappingRule
{
    /// <summary>The claim of the upstream ID token, e.g. <c>groups</c> or <c>roles</c> (a string or an array of strings).</summary>
    public string? Claim { get; set; }

    /// <summary>The value the claim must contain (exact, case-sensitive), e.g. <c>crm-sales</c> or an Entra group's object id.</summary>
    public string? Value { get; set; }

    /// <summary>
    /// The role of the authorization model (its id) a match grants. Always this literal id: a rule never copies a role name
    /// out of a claim, so an upstream provider cannot name a role the configuration does not.
    /// </summary>
    public string? Role { get; set; }
}

/// <summary>Checks <c>Identity:Federation</c> at start; each message names the setting and says how to fix it.</summary>
internal sealed partial class FederationSettingsValidator(IConfiguration configuration) : IValidateOptions<FederationSettings>
{
    public const int MaxNameLength = 40;

    public ValidateOptionsResult Validate(string? name, FederationSettings settings)
    {
        var errors = new List<string>();
        var allowHttp = bool.TryParse(configuration["Identity:AllowHttp"], out var http) && http;
        foreach (var (providerName, provider) in settings.Providers)
        {
            var key = $"{FederationSettings.Section}:Providers:{providerName}";
            if (!ProviderName().IsMatch(providerName))
            {
                errors.Add($"{key}: the provider name must be 1 to {MaxNameLength} lower-case letters, digits or '-' (it becomes the callback path /federation/<name>/callback and the idp claim), e.g. entra or okta.");
            }

            if (string.IsNullOrWhiteSpace(provider.DisplayName) || provider.DisplayName.Length > 100)
            {
                errors.Add($"{key}:DisplayName is required (at most 100 characters): the sign-in page shows \"Sign in with <DisplayName>\".");
            }

            if (!Uri.TryCreate(provider.Authority, UriKind.Absolute, out var authority) || authority.Scheme is not ("https" or "http")
                || authority.Query.Length > 0 || authority.Fragment.Length > 0)
            {
                errors.Add($"{key}:Authority '{provider.Authority}' is not an absolute URL without query or fragment. Set the provider's issuer, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0.");
            }
            else if (authority.Scheme != Uri.UriSchemeHttps && !allowHttp)
            {
                // OpenID Connect Discovery §4 / Core §3.1.2.1: the provider's metadata and endpoints are fetched over TLS.
                errors.Add($"{key}:Authority '{provider.Authority}' must use https. Use the provider's https issuer, or set Identity:AllowHttp to true for a loopback test setup.");
            }

            if (string.IsNullOrWhiteSpace(provider.ClientId))
            {
                errors.Add($"{key}:ClientId is required: the client id this service was registered with at the provider.");
            }

            if (string.IsNullOrWhiteSpace(provider.ClientSecret))
            {
                // Never repeat the value: it is a secret.
                errors.Add($"{key}:ClientSecret is required: the client secret this service was given by the provider (set it from a secret store or an environment variable, not a file).");
            }

            foreach (var (scope, index) in provider.Scopes.Select((s, i) => (s, i)))
            {
                // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
                if (string.IsNullOrEmpty(scope) || !scope.All(c => c is '\x21' or (>= '\x23' and <= '\x5B') or (>= '\x5D' and <= '\x7E')))
                {
                    errors.Add($"{key}:Scopes:{index} '{scope}' is not one scope. Give one scope per entry, without spaces, e.g. profile.");
                }
            }

            if (provider.JustInTimeCreation && !Identifier().IsMatch(provider.BusinessUnit ?? ""))
            {
                errors.Add($"{key}:BusinessUnit is required when {key}:JustInTimeCreation is true: the id of the business unit new users land in, e.g. sales-west.");
            }
            else if (!string.IsNullOrEmpty(provider.BusinessUnit) && !Identifier().IsMatch(provider.BusinessUnit))
            {
                errors.Add($"{key}:BusinessUnit '{provider.BusinessUnit}' is not a business unit id: letters, digits, '_', '-' or '.'.");
            }

            foreach (var (rule, index) in provider.RoleMappings.Select((r, i) => (r, i)))
            {
                var ruleKey = $"{key}:RoleMappings:{index}";
                if (string.IsNullOrWhiteSpace(rule.Claim) || rule.Claim.Length > 200)
                {
                    errors.Add($"{ruleKey}:Claim is required: the ID token claim the rule reads, e.g. groups.");
                }

                if (string.IsNullOrEmpty(rule.Value) || rule.Value.Length > 500)
                {
                    errors.Add($"{ruleKey}:Value is required: the value the claim must contain, e.g. crm-sales.");
                }

                if (!Identifier().IsMatch(rule.Role ?? ""))
                {
                    errors.Add($"{ruleKey}:Role '{rule.Role}' is not a role id: name one role of the authorization model (letters, digits, '_', '-' or '.'), e.g. sales_rep.");
                }
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    [GeneratedRegex("^[a-z0-9-]{1,40}$")]
    private static partial Regex ProviderName();

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,100}$")]
    private static partial Regex Identifier();
}
