using System.Net;
using System.Text.RegularExpressions;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Identity.AccountBrowser;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>
/// Issue 11, what the attack did not try (OWASP ASVS 4.0.3 V14.4, V8.2.1): the response headers of every HTML page.
/// Sign-in, consent and account pages could be framed (clickjacking the Allow button), cached by a browser or proxy with
/// their anti-forgery tokens, recovery codes and authenticator key, and leaked a reset link's token in a Referer. Every
/// HTML page now carries a strict Content-Security-Policy: stylesheets from this origin (the one design-system stylesheet,
/// issue 13) and an inline style only by nonce; never 'unsafe-inline', never a script.
/// </summary>
public sealed partial class PageHeaderTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    [Fact]
    public async Task Every_sign_in_account_consent_and_admin_page_is_unframeable_uncached_unsniffed_and_script_free()
    {
        using var anonymous = host.CreateClient();
        var pages = new List<(string Name, HttpResponseMessage Response)>
        {
            ("login", await anonymous.GetAsync(new Uri("account/login", UriKind.Relative), Personas.Cancel)),
            ("forgot password", await anonymous.GetAsync(new Uri("account/forgot-password", UriKind.Relative), Personas.Cancel)),
            ("reset password", await anonymous.GetAsync(new Uri("account/reset-password?user=someone&token=secret-token", UriKind.Relative), Personas.Cancel)),
        };

        using var dave = host.CreateClient();
        await SignInAsync(dave, "dave");
        pages.Add(("account", await dave.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)));
        pages.Add(("two-step enrolment", await dave.GetAsync(new Uri("account/two-factor", UriKind.Relative), Personas.Cancel)));
        pages.Add(("logout", await dave.GetAsync(new Uri("connect/logout", UriKind.Relative), Personas.Cancel)));
        pages.Add(("admin", await dave.GetAsync(new Uri("admin", UriKind.Relative), Personas.Cancel)));
        var consent = OAuthFlows.AuthorizeParameters(OAuthFlows.Pkce().Challenge, OAuthFlows.SpaClient, OAuthFlows.SpaRedirect, "openid profile");
        pages.Add(("consent", await dave.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(consent), UriKind.Relative), Personas.Cancel)));

        foreach (var (name, response) in pages)
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{name}: {response.StatusCode}");
            Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
            var csp = Header(response, "Content-Security-Policy");
            Assert.Contains("default-src 'none'", csp, StringComparison.Ordinal);
            Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
            Assert.Contains("base-uri 'none'", csp, StringComparison.Ordinal);
            Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);

            // The page links the host's one stylesheet (allowed as 'self'); it has no inline style.
            var body = await response.Content.ReadAsStringAsync(Personas.Cancel);
            var nonce = Nonce().Match(csp).Groups["nonce"].Value;
            Assert.True(nonce.Length >= 16, $"{name}: no nonce in {csp}");
            Assert.Matches(Stylesheet(), body);
            Assert.DoesNotContain("<style", body, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(" style=", body, StringComparison.OrdinalIgnoreCase);
            if (name == "login")
            {
                // The sign-in page runs the passkey script, and only that element: CSP Level 3 §8.2 nonce-source binds the
                // allowance to the one <script> tag the server wrote, so a same-origin file an attacker gets served (or a
                // script element injected into the page) does not run, as it would under script-src 'self'.
                Assert.Contains($"script-src 'nonce-{nonce}';", csp, StringComparison.Ordinal);
                Assert.DoesNotContain("script-src 'self'", csp, StringComparison.Ordinal);
                var scripts = ScriptTag().Matches(body);
                var tag = Assert.Single(scripts).Value;
                Assert.Contains("src=\"/account/passkeys.js\"", tag, StringComparison.Ordinal);
                Assert.Contains($"nonce=\"{nonce}\"", tag, StringComparison.Ordinal);
            }
            else
            {
                Assert.DoesNotContain("script-src", csp, StringComparison.Ordinal); // default-src 'none' forbids every script
                Assert.DoesNotContain("<script", body, StringComparison.OrdinalIgnoreCase);
            }

            Assert.Equal("DENY", Header(response, "X-Frame-Options"));
            Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
            Assert.Equal("no-referrer", Header(response, "Referrer-Policy"));
            Assert.Contains("no-store", Header(response, "Cache-Control"), StringComparison.Ordinal);
        }

        Assert.Equal(pages.Count, pages.Select(page => Nonce().Match(Header(page.Response, "Content-Security-Policy")).Value).Distinct().Count());
    }

    [Fact]
    public async Task A_form_post_authorization_response_may_run_its_one_script_and_nothing_else()
    {
        // response_mode=form_post, the default of ASP.NET Core's OpenID Connect handler: a page that posts the code to
        // the client with one inline script. A policy without it leaves the browser on a blank page (the sign-in hangs).
        using var dave = host.CreateClient();
        await SignInAsync(dave, "dave");
        var parameters = OAuthFlows.AuthorizeParameters(OAuthFlows.Pkce().Challenge);
        parameters["response_mode"] = "form_post";

        using var response = await dave.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(parameters), UriKind.Relative), Personas.Cancel);
        var body = await response.Content.ReadAsStringAsync(Personas.Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var scripts = Script().Matches(body).Select(m => m.Groups["code"].Value).ToList();
        var script = Assert.Single(scripts);
        var hash = Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(script)));
        var csp = Header(response, "Content-Security-Policy");
        Assert.Contains($"script-src 'sha256-{hash}';", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);
        Assert.Contains("default-src 'none'", csp, StringComparison.Ordinal);
        Assert.Contains($"action=\"{OAuthFlows.CrmRedirect}\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_design_stylesheet_is_served_from_this_origin_as_css_never_sniffed_and_cached_by_content_hash()
    {
        using var anonymous = host.CreateClient();
        var login = await anonymous.GetStringAsync(new Uri("account/login", UriKind.Relative), Personas.Cancel);
        var href = StylesheetHref().Match(login).Groups["href"].Value;

        using var css = await anonymous.GetAsync(new Uri(href.TrimStart('/'), UriKind.Relative), Personas.Cancel);
        using var unknown = await anonymous.GetAsync(new Uri("assets/design.0123456789abcdef.css", UriKind.Relative), Personas.Cancel);

        Assert.Equal(HttpStatusCode.OK, css.StatusCode);
        Assert.Equal("text/css", css.Content.Headers.ContentType?.MediaType);
        Assert.Equal("nosniff", Header(css, "X-Content-Type-Options"));
        Assert.Contains("immutable", Header(css, "Cache-Control"), StringComparison.Ordinal);
        Assert.Contains(":root", await css.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode); // only the current content's address answers
    }

    [Fact]
    public async Task Json_answers_are_not_sniffed_as_html()
    {
        using var http = host.CreateClient();
        var discovery = await http.GetAsync(new Uri(".well-known/openid-configuration", UriKind.Relative), Personas.Cancel);

        Assert.Equal("nosniff", Header(discovery, "X-Content-Type-Options"));
    }

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? string.Join(", ", values)
            : "";

    [GeneratedRegex("<link rel=\"stylesheet\" href=\"(?<href>[^\"]+)\">")]
    private static partial Regex StylesheetHref();

    [GeneratedRegex("<script>(?<code>.*?)</script>", RegexOptions.Singleline)]
    private static partial Regex Script();

    [GeneratedRegex("<script[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex ScriptTag();

    [GeneratedRegex("style-src 'self' 'nonce-(?<nonce>[^']+)'")]
    private static partial Regex Nonce();

    [GeneratedRegex("<link rel=\"stylesheet\" href=\"/assets/design\\.[0-9a-f]{16}\\.css\">")]
    private static partial Regex Stylesheet();
}
