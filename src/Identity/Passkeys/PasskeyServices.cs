using CrmSecurity.Identity.Protocol;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Passkeys;

/// <summary>Passkeys (WebAuthn) on ASP.NET Core Identity's passkey handler: settings, ceremonies, sign-in, the page script.</summary>
internal static class PasskeyServices
{
    /// <summary>Where the pages load their one script from (same origin; the pages' CSP allows the one tag carrying the response's nonce).</summary>
    public const string ScriptPath = "/account/passkeys.js";

    private const string ScriptResource = "CrmSecurity.Identity.Passkeys.passkeys.js";

    public static IServiceCollection AddPasskeys(this IServiceCollection services)
    {
        services.AddScoped<PasskeyCeremonies>();
        services.AddScoped<PasskeySignIn>();
        services.AddOptions<IdentityPasskeyOptions>().Configure<IOptions<IdentitySettings>, PublicOrigin>((options, settings, origin) =>
        {
            var passkeys = settings.Value.Passkeys;
            // WebAuthn Level 3 §5.1.3: the RP ID is fixed by configuration (or the fixed public origin), never taken from the
            // request's Host header, which the sender chooses. Identity's handler falls back to the request's host when unset.
            options.ServerDomain = RelyingPartyId(passkeys, origin);
            var origins = Origins(passkeys, origin);
            // WebAuthn Level 3 §7.1 step 9 / §7.2 step 13: clientDataJSON.origin is one of ours, and never a cross-origin
            // (framed) call (steps 10 / 14, crossOrigin). The default compares with the request's own Host header.
            options.ValidateOrigin = context => ValueTask.FromResult(!context.CrossOrigin && origins.Contains(context.Origin, StringComparer.Ordinal));
            // WebAuthn Level 3 §6.2.3: the authenticator verifies the user (PIN, biometric), so a passkey alone is two factors.
            options.UserVerificationRequirement = "required";
            // A discoverable credential (§6.2.2): passwordless sign-in finds it without a user name.
            options.ResidentKeyRequirement = "required";
            options.AuthenticatorTimeout = passkeys.CeremonyLifetime;
        });
        return services;
    }

    /// <summary>Serves the pages' script, <c>/account/passkeys.js</c>.</summary>
    public static IEndpointRouteBuilder MapPasskeyScript(this IEndpointRouteBuilder endpoints)
    {
        var script = LoadScript();
        endpoints.MapGet(ScriptPath, (HttpContext http) =>
        {
            http.Response.Headers.CacheControl = "no-cache";
            return Results.Bytes(script, "text/javascript; charset=utf-8");
        }).AllowAnonymous();
        return endpoints;
    }

    /// <summary>The relying party id in force: <c>Identity:Passkeys:RelyingPartyId</c>, or the public origin's host.</summary>
    public static string RelyingPartyId(PasskeySettings settings, PublicOrigin origin) =>
        settings.RelyingPartyId is { } id && !string.IsNullOrWhiteSpace(id) ? id.Trim() : origin.Value.Host;

    /// <summary>The origins in force: <c>Identity:Passkeys:Origins</c>, or the public origin alone.</summary>
    public static string[] Origins(PasskeySettings settings, PublicOrigin origin) =>
        settings.Origins.Count > 0
            ? [.. settings.Origins.Select(o => o.Trim().TrimEnd('/'))]
            : [origin.Value.GetLeftPart(UriPartial.Authority)];

    private static byte[] LoadScript()
    {
        using var stream = typeof(PasskeyServices).Assembly.GetManifestResourceStream(ScriptResource)
            ?? throw new InvalidOperationException($"The passkey script resource {ScriptResource} is missing from the build.");
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }
}
