using System.Net;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>
/// The service as deployed behind a TLS-terminating proxy: an https public origin, plain HTTP not allowed, forwarded
/// headers on (the proxy, here on loopback, says the browser's request was https).
/// </summary>
public sealed class HttpsOriginHost : SecurityHost
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Issuer"] = "https://login.bank.test/",
        ["Identity:AllowHttp"] = "false",
        ["ForwardedHeaders_Enabled"] = "true",
    };
}

/// <summary>
/// Issue 11, what the attack did not try (OWASP ASVS 4.0.3 V3.4): cookie flags. On an https origin the session, two-step
/// and anti-forgery cookies are Secure with the <c>__Host-</c> prefix (no sibling subdomain can set or shadow them), and
/// everywhere they are HttpOnly with a SameSite policy. Before, the session cookie was <c>crm.identity</c> without Secure
/// unless the request itself came over https (which it does not behind a TLS-terminating proxy).
/// </summary>
public sealed class CookieTests(HttpsOriginHost host) : IClassFixture<HttpsOriginHost>
{
    [Fact]
    public async Task On_an_https_origin_every_sign_in_cookie_is_host_prefixed_secure_httponly_and_samesite()
    {
        // Cookies by hand: a client honouring Secure would not send them back over this loopback HTTP connection.
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = host.BaseAddress };
        http.DefaultRequestHeaders.Add("X-Forwarded-Proto", "https");
        var page = await http.GetAsync(new Uri("account/login", UriKind.Relative), Personas.Cancel);
        var antiforgery = SetCookies(page).Single(cookie => cookie.Contains("antiforgery", StringComparison.Ordinal));
        AssertHardened(antiforgery, "Strict");

        using var login = new HttpRequestMessage(HttpMethod.Post, "account/login")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["Username"] = "dave", ["Password"] = Personas.Passwords["dave"], ["ReturnUrl"] = "/account",
                ["__RequestVerificationToken"] = OAuthFlows.AntiForgeryToken(await page.Content.ReadAsStringAsync(Personas.Cancel)),
            }),
        };
        login.Headers.Add("Cookie", antiforgery.Split(';')[0]);
        var signedIn = await http.SendAsync(login, Personas.Cancel);

        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        var session = SetCookies(signedIn).Single(cookie => cookie.StartsWith("__Host-crm.identity=", StringComparison.Ordinal));
        AssertHardened(session, "Lax");
    }

    private static void AssertHardened(string cookie, string sameSite)
    {
        Assert.StartsWith("__Host-", cookie, StringComparison.Ordinal);
        var attributes = cookie.Split(';').Skip(1).Select(a => a.Trim()).ToList();
        Assert.Contains(attributes, a => a.Equals("secure", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(attributes, a => a.Equals("httponly", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(attributes, a => a.Equals("path=/", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(attributes, a => a.Equals("samesite=" + sameSite, StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(attributes, a => a.StartsWith("domain=", StringComparison.OrdinalIgnoreCase));
    }

    private static List<string> SetCookies(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Set-Cookie", out var values) ? [.. values] : [];
}

/// <summary>The same over plain HTTP (Development, tests): no Secure or prefix is possible, HttpOnly and SameSite still are.</summary>
public sealed class PlainHttpCookieTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    [Fact]
    public async Task Over_plain_http_the_session_and_two_step_cookies_are_still_httponly_and_samesite()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() }) { BaseAddress = host.BaseAddress };
        var signedIn = await OAuthFlows.SubmitLoginAsync(http, "/account", "frank", Personas.Passwords["frank"]);

        var session = signedIn.Headers.GetValues("Set-Cookie").Single(cookie => cookie.StartsWith("crm.identity=", StringComparison.Ordinal));
        Assert.Contains("httponly", session, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", session, StringComparison.OrdinalIgnoreCase);
    }
}
