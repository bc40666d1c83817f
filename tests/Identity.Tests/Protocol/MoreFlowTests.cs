using System.Net;
using System.Text.RegularExpressions;
using CrmSecurity.Identity.Clients;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>Consent, RP-initiated logout, pushed authorization requests and token exchange.</summary>
public sealed partial class MoreFlowTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private const string TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
    private const string AccessTokenType = "urn:ietf:params:oauth:token-type:access_token";

    [Fact]
    public async Task A_third_party_client_asks_consent_once_and_a_denial_returns_access_denied()
    {
        using var http = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var parameters = AuthorizeParameters(challenge, SpaClient, SpaRedirect, "openid profile crm.api");
        var consent = await SignInToConsentAsync(http, parameters, "bob", "Bob-Manages-The-Team-42");
        Assert.Contains("Allow Demo single-page app to use your account?", consent, StringComparison.Ordinal);

        var accepted = await DecideAsync(http, consent, "accept");
        Assert.Equal(HttpStatusCode.Redirect, accepted.StatusCode);
        var (status, tokens) = await RedeemAsync(http, CodeFrom(accepted.Headers.Location!), verifier, SpaRedirect, SpaClient, secret: null);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("bob", Payload(tokens.GetProperty("access_token").GetString()!).GetProperty("preferred_username").GetString());

        // Remembered: the same request goes straight to the client.
        var again = await http.GetAsync(new Uri(AuthorizeUrl(AuthorizeParameters(Pkce().Challenge, SpaClient, SpaRedirect, "openid profile crm.api")), UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.Redirect, again.StatusCode);
        Assert.StartsWith(SpaRedirect, again.Headers.Location!.AbsoluteUri, StringComparison.Ordinal);

        // prompt=consent asks again even for the remembered scope set.
        var prompted = AuthorizeParameters(Pkce().Challenge, SpaClient, SpaRedirect, "openid profile crm.api");
        prompted["prompt"] = "consent";
        var askedAgain = await http.GetAsync(new Uri(AuthorizeUrl(prompted), UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.OK, askedAgain.StatusCode);
        Assert.Contains("Allow Demo single-page app", await askedAgain.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);

        // A new scope set asks again, and a denial goes back as access_denied.
        var wider = AuthorizeParameters(Pkce().Challenge, SpaClient, SpaRedirect, "openid profile email crm.api");
        var page = await (await http.GetAsync(new Uri(AuthorizeUrl(wider), UriKind.Relative), Cancel)).Content.ReadAsStringAsync(Cancel);
        var denied = await DecideAsync(http, page, "deny");
        Assert.Equal("access_denied", QueryHelpers.ParseQuery(denied.Headers.Location!.Query)["error"].ToString());
    }

    [Fact]
    public async Task Logout_asks_first_then_ends_the_session_and_returns_only_to_a_registered_uri()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAliceInAsync(http);
        var idToken = tokens.GetProperty("id_token").GetString()!;

        var unregistered = await http.GetAsync(new Uri($"connect/logout?id_token_hint={idToken}&post_logout_redirect_uri={Uri.EscapeDataString("https://evil.example/")}", UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.BadRequest, unregistered.StatusCode);

        var confirm = await http.GetAsync(new Uri($"connect/logout?id_token_hint={idToken}&post_logout_redirect_uri={Uri.EscapeDataString("http://localhost:5081/signout-callback-oidc")}&state=s1", UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.OK, confirm.StatusCode); // a GET alone signs nobody out
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("account", UriKind.Relative), Cancel)).StatusCode);

        var page = await confirm.Content.ReadAsStringAsync(Cancel);
        var form = HiddenFields(page);
        var signedOut = await http.PostAsync(new Uri("connect/logout", UriKind.Relative), new FormUrlEncodedContent(form), Cancel);

        Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);
        Assert.StartsWith("http://localhost:5081/signout-callback-oidc", signedOut.Headers.Location!.AbsoluteUri, StringComparison.Ordinal);
        Assert.Equal("s1", QueryHelpers.ParseQuery(signedOut.Headers.Location.Query)["state"].ToString());
        Assert.Equal(HttpStatusCode.Redirect, (await http.GetAsync(new Uri("account", UriKind.Relative), Cancel)).StatusCode);
    }

    [Fact]
    public async Task A_pushed_authorization_request_is_used_by_reference_and_a_client_that_requires_it_cannot_skip_it()
    {
        using var http = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var (status, pushed) = await PostFormAsync(http, "connect/par", AuthorizeParameters(challenge), (CrmClient, CrmSecret));
        Assert.Equal(HttpStatusCode.Created, status);
        var requestUri = pushed.GetProperty("request_uri").GetString()!;
        Assert.StartsWith("urn:ietf:params:oauth:request_uri:", requestUri, StringComparison.Ordinal);

        var redirect = await AuthorizeAsync(http, new Dictionary<string, string> { ["client_id"] = CrmClient, ["request_uri"] = requestUri });
        var (redeemed, _) = await RedeemAsync(http, CodeFrom(redirect), verifier);
        Assert.Equal(HttpStatusCode.OK, redeemed);

        await RegisterAsync(new ClientSettings
        {
            ClientId = "par-only",
            ClientSecret = "par-only-secret-value",
            GrantTypes = ["authorization_code"],
            Scopes = ["openid"],
            RedirectUris = ["http://localhost:5090/cb"],
            RequirePushedAuthorization = true,
        });
        var direct = await http.GetAsync(new Uri(AuthorizeUrl(AuthorizeParameters(Pkce().Challenge, "par-only", "http://localhost:5090/cb", "openid")), UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.BadRequest, direct.StatusCode);
        Assert.Contains("ID2054", await direct.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal); // request_uri required
    }

    [Fact]
    public async Task Token_exchange_gives_the_back_end_a_token_for_another_api_on_behalf_of_the_user()
    {
        using var http = host.CreateClient();
        var user = await SignInAliceAsync(host);
        var subjectToken = user.GetProperty("access_token").GetString()!;

        var (status, exchanged) = await PostFormAsync(http, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = TokenExchange,
            ["subject_token"] = subjectToken,
            ["subject_token_type"] = AccessTokenType,
            ["scope"] = "crm.reports",
        }, (CrmClient, CrmSecret));

        Assert.True(status == HttpStatusCode.OK, $"{status} {exchanged.GetRawText()}");

        Assert.Equal(AccessTokenType, exchanged.GetProperty("issued_token_type").GetString());
        var payload = Payload(exchanged.GetProperty("access_token").GetString()!);
        Assert.Equal(Payload(subjectToken).GetProperty("sub").GetString(), payload.GetProperty("sub").GetString());
        Assert.Equal("crm-reports", payload.GetProperty("aud").GetString());
        Assert.Equal(CrmClient, payload.GetProperty("act").GetProperty("sub").GetString()); // RFC 8693 §4.1
    }

    [Fact]
    public async Task Token_exchange_refuses_a_subject_token_issued_to_another_client_and_a_revoked_one()
    {
        using var http = host.CreateClient();
        await RegisterAsync(new ClientSettings
        {
            ClientId = "other-backend",
            ClientSecret = "other-backend-secret",
            GrantTypes = [TokenExchange],
            Scopes = ["crm.reports"],
        });
        var subjectToken = (await SignInAliceAsync(host)).GetProperty("access_token").GetString()!;
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = TokenExchange,
            ["subject_token"] = subjectToken,
            ["subject_token_type"] = AccessTokenType,
            ["scope"] = "crm.reports",
        };

        var (foreign, error) = await PostFormAsync(http, "connect/token", form, ("other-backend", "other-backend-secret"));
        Assert.Equal(HttpStatusCode.BadRequest, foreign);
        Assert.Equal("invalid_grant", error.GetProperty("error").GetString());

        await RevokeAsync(http, subjectToken);
        var (revoked, _) = await PostFormAsync(http, "connect/token", form, (CrmClient, CrmSecret));
        Assert.Equal(HttpStatusCode.BadRequest, revoked);
    }

    private async Task RegisterAsync(ClientSettings client)
    {
        await using var scope = host.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<ClientRegistry>().RegisterAsync(client, Cancel);
    }

    private static async Task<System.Text.Json.JsonElement> SignInAliceInAsync(HttpClient http)
    {
        var (verifier, challenge) = Pkce();
        var redirect = await AuthorizeAsync(http, AuthorizeParameters(challenge));
        var (_, tokens) = await RedeemAsync(http, CodeFrom(redirect), verifier);
        return tokens;
    }

    private static async Task<string> SignInToConsentAsync(HttpClient http, Dictionary<string, string> parameters, string user, string password)
    {
        var first = await http.GetAsync(new Uri(AuthorizeUrl(parameters), UriKind.Relative), Cancel);
        var returnUrl = QueryHelpers.ParseQuery(first.Headers.Location!.Query)["ReturnUrl"].ToString();
        var login = await SubmitLoginAsync(http, returnUrl, user, password);
        var consent = await http.GetAsync(login.Headers.Location, Cancel);
        Assert.Equal(HttpStatusCode.OK, consent.StatusCode);
        return await consent.Content.ReadAsStringAsync(Cancel);
    }

    private static Task<HttpResponseMessage> DecideAsync(HttpClient http, string consentPage, string decision)
    {
        var form = HiddenFields(consentPage);
        form["decision"] = decision;
        return http.PostAsync(new Uri("connect/authorize", UriKind.Relative), new FormUrlEncodedContent(form), Cancel);
    }

    private static Dictionary<string, string> HiddenFields(string page) =>
        Input().Matches(page)
            .Select(m => m.Value)
            .Where(tag => tag.Contains("type=\"hidden\"", StringComparison.Ordinal))
            .ToDictionary(tag => WebUtility.HtmlDecode(Attribute(tag, "name")), tag => WebUtility.HtmlDecode(Attribute(tag, "value")));

    private static string Attribute(string tag, string name) =>
        Regex.Match(tag, $"\\b{name}=\"(?<v>[^\"]*)\"").Groups["v"].Value;

    [GeneratedRegex("<input [^>]*>")]
    private static partial Regex Input();
}
