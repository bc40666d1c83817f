using System.Security.Cryptography;

namespace CrmSecurity.Identity.Pages.Shared;

/// <summary>
/// Response headers for every HTML page the host serves (sign-in, consent, account, admin, review), added by one
/// middleware so no page can forget them (OWASP ASVS 4.0.3 V14.4):
/// <list type="bullet">
/// <item>a strict Content-Security-Policy: nothing loads but stylesheets from this origin (the host's one design-system
/// stylesheet), an inline style only by a per-response nonce, and images from this origin or <c>data:</c> (the enrolment
/// QR code); never <c>'unsafe-inline'</c>, no script, no plugin, no base URI, never framed (V14.4.3;
/// <c>frame-ancestors 'none'</c> with <c>X-Frame-Options: DENY</c> for older browsers, V14.4.7);</item>
/// <item><c>Referrer-Policy: no-referrer</c>: a reset link carries its token in the URL (V14.4.6);</item>
/// <item><c>Cache-Control: no-store</c>: pages with anti-forgery tokens, recovery codes, an authenticator key or personal
/// data are never kept by a browser or a proxy (V8.2.1);</item>
/// <item><c>X-Content-Type-Options: nosniff</c> on every response (V14.4.4), HSTS over HTTPS (V14.4.5).</item>
/// </list>
/// The CSP has no <c>form-action</c>: Chromium applies it to the redirects after a form post, and the sign-in and consent
/// posts end, by design, in a redirect to the client's registered redirect URI on another origin.
/// </summary>
internal static class SecurityHeaders
{
    /// <summary>
    /// Where a page finds this response's style nonce (<c>&lt;style nonce="..."&gt;</c>). The layouts need none (they link the
    /// design system's stylesheet); it stays for a page that truly needs a style of its own.
    /// </summary>
    public const string NonceItem = "CrmSecurity.CspNonce";

    public static IServiceCollection AddPageSecurityHeaders(this IServiceCollection services) =>
        services.AddTransient<IStartupFilter, SecurityHeadersStartupFilter>();

    /// <summary>CSP hash of OpenIddict's form_post script, <c>document.form.submit();</c> (OpenIddict.Server.AspNetCore 7.9).</summary>
    internal const string FormPostItem = "CrmSecurity.FormPostResponse";

    internal const string FormPostScriptHash = "sha256-j7OoGArf6XW6YY4cAyS3riSSvrJRqpSi1fOF9vQ5SrI=";

    /// <summary>The style nonce of this response.</summary>
    /// <summary>Set by a page that runs its own nonce-bearing script (the copy button of a secret shown once); no other page runs one.</summary>
    public const string ScriptNonceItem = "CrmSecurity.ScriptNonce";

    /// <summary>
    /// Set by a page that runs the passkey script (<c>/account/passkeys.js</c>): that page allows the one script element carrying
    /// this response's nonce (CSP Level 3 §8.2; not <c>'self'</c>, which would run any same-origin file an injected tag names)
    /// and same-origin requests, the script's one call for a ceremony's options (<c>connect-src</c>).
    /// </summary>
    public const string PasskeyScriptItem = "CrmSecurity.PasskeyScript";

    public static string Nonce(HttpContext context) => context.Items[NonceItem] as string ?? "";

    private static void Apply(HttpContext context, string nonce)
    {
        var headers = context.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        if (context.Request.IsHttps)
        {
            // RFC 6797: one year; browsers then refuse plain HTTP to this host.
            headers.StrictTransportSecurity = "max-age=31536000";
        }

        if (context.Response.ContentType?.StartsWith("text/html", StringComparison.OrdinalIgnoreCase) != true)
        {
            return;
        }

        // The authorization endpoint answers response_mode=form_post (OAuth 2.0 Form Post Response Mode §2; the default of
        // ASP.NET Core's OpenID Connect handler) with OpenIddict's page that posts the code to the client by one fixed
        // inline script. Only that script's hash is allowed, on that response only (Protocol/MarkFormPostResponses):
        // without it a browser shows a blank page and the sign-in never reaches the CRM app.
        var scripts = context.Items.ContainsKey(FormPostItem) ? $" script-src '{FormPostScriptHash}';"
            : context.Items.ContainsKey(ScriptNonceItem) ? $" script-src 'nonce-{nonce}';"
            : context.Items.ContainsKey(PasskeyScriptItem) ? $" script-src 'nonce-{nonce}'; connect-src 'self';" : "";
        headers.ContentSecurityPolicy =
            $"default-src 'none';{scripts} style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; base-uri 'none'; object-src 'none'; frame-ancestors 'none'";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers["Cross-Origin-Opener-Policy"] = "same-origin";
        headers.CacheControl = "no-store";
        headers.Pragma = "no-cache";
    }

    private sealed class SecurityHeadersStartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                // 128 random bits per response (CSP Level 3 §7.2: a nonce is unguessable and never reused).
                var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)); // hex: nothing for HTML encoding to change
                context.Items[NonceItem] = nonce;
                context.Response.OnStarting(() =>
                {
                    Apply(context, nonce);
                    return Task.CompletedTask;
                });
                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
