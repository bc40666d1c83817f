using CrmSecurity.Identity.Protocol;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace CrmSecurity.Server.Hosting;

/// <summary>
/// One switch per module, <c>Modules:&lt;Name&gt;:Enabled</c> (Identity, AuditAnalyzer, Crypto), each on unless switched
/// off. A large installation runs the same host several times, one module each. Without Identity in the host, bearer tokens are checked against the external issuer named by
/// <c>Identity:Authority</c> (its discovery document and keys).
/// </summary>
/// <remarks>
/// <c>Crypto:Enabled</c> is the older name of <c>Modules:Crypto:Enabled</c> and is still honoured, so a configuration
/// written for an earlier build keeps its meaning; when both are set they must agree.
/// </remarks>
internal sealed record ModuleSwitches(bool Identity, bool AuditAnalyzer, bool Crypto)
{
    public const string IdentitySetting = "Modules:Identity:Enabled";
    public const string AuditAnalyzerSetting = "Modules:AuditAnalyzer:Enabled";
    public const string CryptoSetting = "Modules:Crypto:Enabled";
    public const string CryptoOlderSetting = "Crypto:Enabled";
    public const string AuthoritySetting = "Identity:Authority";

    /// <summary>
    /// Reads the switches without throwing: a value that is not a boolean counts as the module's default here and is
    /// reported at start by <see cref="ModuleSwitchesValidator"/> as exit 78 naming the setting.
    /// </summary>
    public static ModuleSwitches Read(IConfiguration configuration) => new(
        Flag(configuration[IdentitySetting]) ?? true,
        Flag(configuration[AuditAnalyzerSetting]) ?? true,
        Flag(configuration[CryptoSetting]) ?? Flag(configuration[CryptoOlderSetting]) ?? true);

    internal static bool? Flag(string? value) => bool.TryParse(value, out var on) ? on : null;
}

internal static class ModuleSwitchesHosting
{
    public static ModuleSwitches AddModuleSwitches(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ModuleSwitchesCheck>().ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ModuleSwitchesCheck>>(new ModuleSwitchesValidator(builder.Configuration));
        return ModuleSwitches.Read(builder.Configuration);
    }

    /// <summary>
    /// Bearer scheme <paramref name="scheme"/> for tokens meant for <paramref name="audience"/>: this host's own provider
    /// when Identity runs here, else the external issuer of <c>Identity:Authority</c>.
    /// </summary>
    public static AuthenticationBuilder AddHostBearer(this AuthenticationBuilder builder, IConfiguration configuration, string scheme, string audience)
    {
        if (ModuleSwitches.Read(configuration).Identity)
        {
            return builder.AddIdentityBearer(scheme, audience);
        }

        return builder.AddJwtBearer(scheme, options =>
        {
            var authority = configuration[ModuleSwitches.AuthoritySetting];
            options.Authority = authority;
            options.MapInboundClaims = false;
            // Metadata and keys over HTTPS, except from a loopback issuer (tests, a side-car on the same machine).
            options.RequireHttpsMetadata = !(Uri.TryCreate(authority, UriKind.Absolute, out var uri) && uri.IsLoopback);
            options.TokenValidationParameters = new TokenValidationParameters
            {
                ValidAudience = audience, // RFC 9068 §4: the token must be meant for this resource
                ValidTypes = ["at+jwt"], // RFC 9068 §4: only access tokens, never an ID token
                NameClaimType = "name",
                RoleClaimType = "role",
            };
        });
    }
}

/// <summary>Marker options so the switches are validated with the other settings at start.</summary>
internal sealed class ModuleSwitchesCheck;

internal sealed class ModuleSwitchesValidator(IConfiguration configuration) : IValidateOptions<ModuleSwitchesCheck>
{
    public ValidateOptionsResult Validate(string? name, ModuleSwitchesCheck options)
    {
        var errors = new List<string>();
        // Crypto:Enabled, the older name, is reported by the Crypto module's own options binder.
        foreach (var setting in new[] { ModuleSwitches.IdentitySetting, ModuleSwitches.AuditAnalyzerSetting, ModuleSwitches.CryptoSetting })
        {
            if (configuration[setting] is { } value && !bool.TryParse(value, out _))
            {
                errors.Add($"The setting '{setting}' cannot be read as Boolean. Use true or false.");
            }
        }

        if (ModuleSwitches.Flag(configuration[ModuleSwitches.CryptoSetting]) is { } crypto
            && ModuleSwitches.Flag(configuration[ModuleSwitches.CryptoOlderSetting]) is { } older && crypto != older)
        {
            errors.Add($"{ModuleSwitches.CryptoOlderSetting} (the older name of {ModuleSwitches.CryptoSetting}) is {Lower(older)} but {ModuleSwitches.CryptoSetting} is {Lower(crypto)}: remove {ModuleSwitches.CryptoOlderSetting} and keep the switch you mean.");
        }

        var switches = ModuleSwitches.Read(configuration);
        if (!switches.Identity && !switches.AuditAnalyzer && !switches.Crypto)
        {
            errors.Add($"{ModuleSwitches.IdentitySetting}, {ModuleSwitches.AuditAnalyzerSetting} and {ModuleSwitches.CryptoSetting} are all off: the host would serve nothing. Turn one module on.");
        }

        if (!switches.Identity && (switches.AuditAnalyzer || switches.Crypto))
        {
            var authority = configuration[ModuleSwitches.AuthoritySetting];
            if (string.IsNullOrWhiteSpace(authority))
            {
                errors.Add($"{ModuleSwitches.AuthoritySetting} is required when {ModuleSwitches.IdentitySetting} is false: set it to the issuer URL of the Identity deployment (for example https://id.example.com/).");
            }
            else if (!Uri.TryCreate(authority, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && !(uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback)))
            {
                // RFC 8414 §2 / OpenID Connect Discovery §4: the issuer is an https URL (http only for a loopback test issuer).
                errors.Add($"{ModuleSwitches.AuthoritySetting} must be an absolute https URL of the issuer (http is accepted only for a loopback address).");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static string Lower(bool value) => value ? "true" : "false";
}
