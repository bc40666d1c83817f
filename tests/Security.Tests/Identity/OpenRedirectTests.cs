using System.Net;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>
/// Issue 11, what the attack did not try (RFC 9700 §4.11, OWASP ASVS 4.0.3 V5.1.5): open redirects. A sign-in link whose
/// ReturnUrl points elsewhere must land on this site after a successful sign-in, whatever encoding tricks it uses (a tab
/// that browsers drop turned <c>/&lt;TAB&gt;/evil.example</c> into <c>//evil.example</c>, and made the page fail with 500),
/// and logout returns only to a URI registered for the client named by the ID token.
/// </summary>
public sealed class OpenRedirectTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    [Theory]
    [InlineData("https://evil.example/")]
    [InlineData("//evil.example/")]
    [InlineData("/\\evil.example/")]
    [InlineData("/\t/evil.example/")]
    [InlineData("/\n/evil.example/")]
    [InlineData(" //evil.example/")]
    public async Task A_return_url_off_this_site_lands_on_the_landing_page_after_sign_in(string returnUrl)
    {
        using var http = host.CreateClient();
        var response = await OAuthFlows.SubmitLoginAsync(http, returnUrl, "erin", Personas.Passwords["erin"]);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", response.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task Logout_does_not_return_to_another_clients_registered_uri_or_an_unregistered_one()
    {
        using var http = host.CreateClient();
        var tokens = await OAuthFlows.SignInAsync(http, "erin", Personas.Passwords["erin"], "openid");
        var idToken = tokens.GetProperty("id_token").GetString()!;

        foreach (var target in new[] { "https://evil.example/", OAuthFlows.SpaRedirect, "http://localhost:5082/" })
        {
            var asked = await http.GetAsync(new Uri($"connect/logout?id_token_hint={idToken}&post_logout_redirect_uri={Uri.EscapeDataString(target)}", UriKind.Relative), Personas.Cancel);
            Assert.Equal(HttpStatusCode.BadRequest, asked.StatusCode);
        }
    }
}
