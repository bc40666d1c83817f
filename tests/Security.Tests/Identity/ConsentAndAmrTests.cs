using System.Net;
using System.Text.RegularExpressions;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.WebUtilities;
using static CrmSecurity.Security.Tests.Identity.AccountBrowser;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>
/// Red-team finding 13: consent refusal was ignored and <c>amr</c> lost the second factor. With <c>prompt=consent</c>
/// after an earlier consent the user clicked Deny and the client still got a code; after a TOTP sign-in the tokens said
/// <c>["pwd"]</c>. A refusal now always returns <c>access_denied</c> (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6), a
/// consent form approves only what it showed, and tokens keep the methods of the sign-in (RFC 8176) through refresh and
/// token exchange.
/// </summary>
public sealed partial class ConsentAndAmrTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    private const string TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
    private const string AccessTokenType = "urn:ietf:params:oauth:token-type:access_token";

    [Fact]
    public async Task Deny_under_prompt_consent_after_an_earlier_consent_returns_access_denied_and_no_code()
    {
        using var http = host.CreateClient();
        var first = await ConsentPageAsync(http, "bob", "openid profile crm.api", signIn: true);
        var accepted = await DecideAsync(http, first, "accept");
        Assert.Contains("code=", accepted.Headers.Location!.Query, StringComparison.Ordinal);

        var prompted = AuthorizeParameters(Pkce().Challenge, SpaClient, SpaRedirect, "openid profile crm.api");
        prompted["prompt"] = "consent";
        var page = await (await http.GetAsync(new Uri(AuthorizeUrl(prompted), UriKind.Relative), Cancel)).Content.ReadAsStringAsync(Cancel);
        var denied = await DecideAsync(http, page, "deny");

        Assert.Equal(HttpStatusCode.Redirect, denied.StatusCode);
        Assert.StartsWith(SpaRedirect, denied.Headers.Location!.AbsoluteUri, StringComparison.Ordinal);
        var query = QueryHelpers.ParseQuery(denied.Headers.Location.Query);
        Assert.Equal("access_denied", query["error"].ToString());
        Assert.Equal(prompted["state"], query["state"].ToString());
        Assert.False(query.ContainsKey("code"));
    }

    [Fact]
    public async Task A_consent_form_replayed_with_more_scopes_than_it_showed_approves_nothing()
    {
        using var http = host.CreateClient();
        var shown = await ConsentPageAsync(http, "ed", "openid profile", signIn: true);

        // The form as shown, with the scope field widened before it is sent.
        var form = HiddenFields(shown);
        form["scope"] = "openid profile email offline_access crm.api";
        form["decision"] = "accept";
        var widened = await http.PostAsync(new Uri("connect/authorize", UriKind.Relative), new FormUrlEncodedContent(form), Cancel);

        // Not a code: the consent page again, now showing what was asked for.
        Assert.Equal(HttpStatusCode.OK, widened.StatusCode);
        var again = await widened.Content.ReadAsStringAsync(Cancel);
        Assert.Contains("<li>crm.api</li>", again, StringComparison.Ordinal);

        // The form a user was shown for one sign-in is not an approval for another user either.
        using var mallory = host.CreateClient();
        var malloryPage = await ConsentPageAsync(mallory, "wade", "openid", signIn: true);
        var stolen = HiddenFields(shown);
        stolen["decision"] = "accept";
        stolen["__RequestVerificationToken"] = HiddenFields(malloryPage)["__RequestVerificationToken"];
        var replayed = await mallory.PostAsync(new Uri("connect/authorize", UriKind.Relative), new FormUrlEncodedContent(stolen), Cancel);
        Assert.Equal(HttpStatusCode.OK, replayed.StatusCode);
    }

    [Fact]
    public async Task After_an_authenticator_code_the_id_access_refreshed_and_exchanged_tokens_say_pwd_otp_mfa()
    {
        using var owner = host.CreateClient();
        var enrolment = await EnrolAuthenticatorAsync(owner, "grace");

        using var browser = host.CreateClient();
        var tokens = await CodeFlowWithSecondFactorAsync(browser, "grace", Totp.Code(enrolment.Key, DateTimeOffset.UtcNow), recovery: false);
        string[] expected = ["pwd", "otp", "mfa"];
        Assert.Equal(expected, Amr(tokens.GetProperty("id_token").GetString()!));
        Assert.Equal(expected, Amr(tokens.GetProperty("access_token").GetString()!));

        var (refreshStatus, refreshed) = await RefreshAsync(browser, tokens.GetProperty("refresh_token").GetString()!);
        Assert.True(refreshStatus == HttpStatusCode.OK, refreshed.ToString());
        Assert.Equal(expected, Amr(refreshed.GetProperty("access_token").GetString()!));
        Assert.Equal(expected, Amr(refreshed.GetProperty("id_token").GetString()!));

        var (exchangeStatus, exchanged) = await PostFormAsync(browser, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = TokenExchange,
            ["subject_token"] = refreshed.GetProperty("access_token").GetString()!,
            ["subject_token_type"] = AccessTokenType,
            ["scope"] = "crm.reports",
        }, (CrmClient, CrmSecret));
        Assert.True(exchangeStatus == HttpStatusCode.OK, exchanged.ToString());
        Assert.Equal(expected, Amr(exchanged.GetProperty("access_token").GetString()!));
    }

    [Fact]
    public async Task After_a_recovery_code_the_tokens_say_pwd_mfa_without_claiming_an_otp()
    {
        using var owner = host.CreateClient();
        var enrolment = await EnrolAuthenticatorAsync(owner, "frank");

        using var browser = host.CreateClient();
        var tokens = await CodeFlowWithSecondFactorAsync(browser, "frank", enrolment.RecoveryCodes[0], recovery: true);

        Assert.Equal(["pwd", "mfa"], Amr(tokens.GetProperty("id_token").GetString()!));
        Assert.Equal(["pwd", "mfa"], Amr(tokens.GetProperty("access_token").GetString()!));
    }

    [Fact]
    public async Task A_password_only_sign_in_says_pwd_and_nothing_more()
    {
        var tokens = await Personas.SignInAsync(host, "carol", "openid profile crm.api");

        Assert.Equal(["pwd"], Amr(tokens.GetProperty("id_token").GetString()!));
        Assert.Equal(["pwd"], Amr(tokens.GetProperty("access_token").GetString()!));
    }

    /// <summary>demo-spa (a third-party client) asks <paramref name="user"/> for <paramref name="scope"/>; returns the consent page.</summary>
    private static async Task<string> ConsentPageAsync(HttpClient http, string user, string scope, bool signIn)
    {
        var parameters = AuthorizeParameters(Pkce().Challenge, SpaClient, SpaRedirect, scope);
        var first = await http.GetAsync(new Uri(AuthorizeUrl(parameters), UriKind.Relative), Cancel);
        if (signIn && first.StatusCode == HttpStatusCode.Redirect)
        {
            var returnUrl = QueryHelpers.ParseQuery(first.Headers.Location!.Query)["ReturnUrl"].ToString();
            var login = await SubmitLoginAsync(http, returnUrl, user, Personas.Passwords[user]);
            first = await http.GetAsync(login.Headers.Location, Cancel);
        }

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var page = await first.Content.ReadAsStringAsync(Cancel);
        Assert.Contains("Allow Demo single-page app", page, StringComparison.Ordinal);
        return page;
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
