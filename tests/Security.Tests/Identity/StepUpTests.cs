using System.Net;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.WebUtilities;
using static CrmSecurity.Security.Tests.Identity.AccountBrowser;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>
/// The demo with an MFA policy (docs/identity-clients.md, "MFA policy"): the client <c>mfa-app</c> requires MFA, the scope
/// <c>email</c> and the role <c>sales_manager</c> need it too, and turning two-step verification off needs a sign-in of the
/// last 3 seconds.
/// </summary>
public sealed class MfaPolicyHost : SecurityHost
{
    public const string Client = "mfa-app";
    public const string Secret = "mfa-app-secret-0123456789";
    public const string Redirect = "http://localhost:5090/signin-oidc";
    public const string DeviceClient = "mfa-cli";

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Clients:0:ClientId"] = Client,
        ["Identity:Clients:0:ClientSecret"] = Secret,
        ["Identity:Clients:0:GrantTypes:0"] = "authorization_code",
        ["Identity:Clients:0:Scopes:0"] = "openid",
        ["Identity:Clients:0:Scopes:1"] = "profile",
        ["Identity:Clients:0:RedirectUris:0"] = Redirect,
        ["Identity:Clients:0:RequireMfa"] = "true",
        ["Identity:Clients:1:ClientId"] = DeviceClient,
        ["Identity:Clients:1:GrantTypes:0"] = "urn:ietf:params:oauth:grant-type:device_code",
        ["Identity:Clients:1:Scopes:0"] = "openid",
        ["Identity:Clients:1:RequireMfa"] = "true",
        ["Identity:Throttling:DeviceCodePerIpPerMinute"] = "100000",
        ["Identity:Mfa:Scopes:0"] = "email",
        ["Identity:Mfa:Scopes:1"] = "crm.reports",
        ["Identity:Mfa:Roles:0"] = "sales_manager",
        ["Identity:Mfa:FreshAuthenticationToTurnOff"] = "00:00:03",
    };
}

/// <summary>
/// Issue 15, step-up MFA (OpenID Connect Core §3.1.2.1 <c>acr_values</c>, §2 <c>acr</c>; RFC 8176 <c>amr</c>; OWASP ASVS
/// 4.0.3 V2.1, V3.7.1). The attacks: someone with only a password (phished) and so a password-only session asks for a code
/// for a client, scope or role that needs a second factor, or for <c>acr_values</c> that demand one; someone holding a
/// stale session turns the second factor off. Each gets no code / changes nothing; the owner steps up and gets tokens
/// that say <c>acr</c> mfa and <c>amr</c> otp, mfa.
/// </summary>
public sealed class StepUpTests(MfaPolicyHost host) : IClassFixture<MfaPolicyHost>
{
    private const string AcrMfa = "urn:crm-security:acr:mfa";
    private const string AcrPassword = "urn:crm-security:acr:pwd";

    [Fact]
    public async Task A_password_only_session_gets_no_code_for_a_client_that_requires_mfa_until_it_steps_up()
    {
        var jar = new CookieContainer();
        using var http = host.CreateClient(cookies: jar);
        var enrolment = await EnrolAuthenticatorAsync(http, "carol"); // carol now holds a password-only session
        var copied = new CookieContainer();
        copied.Add(jar.GetAllCookies()); // a copy of the password-only session, as malware or a proxy log would keep it

        var (verifier, challenge) = OAuthFlows.Pkce();
        var parameters = OAuthFlows.AuthorizeParameters(challenge, MfaPolicyHost.Client, MfaPolicyHost.Redirect, "openid profile");
        var answer = await http.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(parameters), UriKind.Relative), Personas.Cancel);

        Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
        var location = answer.Headers.Location!.OriginalString;
        Assert.StartsWith("/account/login-2fa?ReturnUrl=", location, StringComparison.Ordinal);
        Assert.DoesNotContain("code=", location, StringComparison.Ordinal);

        // The owner answers the second step and the same request now gets its code.
        var returnUrl = QueryHelpers.ParseQuery(location[location.IndexOf('?', StringComparison.Ordinal)..])["ReturnUrl"].ToString();
        var second = await SecondFactorAsync(http, Totp.Code(enrolment.Key, DateTimeOffset.UtcNow), returnUrl: returnUrl);
        Assert.Equal(HttpStatusCode.Redirect, second.StatusCode);
        var back = await http.GetAsync(second.Headers.Location, Personas.Cancel);
        Assert.Equal(HttpStatusCode.Redirect, back.StatusCode);
        var (status, tokens) = await OAuthFlows.RedeemAsync(http, OAuthFlows.CodeFrom(back.Headers.Location!), verifier, MfaPolicyHost.Redirect, MfaPolicyHost.Client, MfaPolicyHost.Secret);
        Assert.Equal(HttpStatusCode.OK, status);
        var idToken = tokens.GetProperty("id_token").GetString()!;
        Assert.Equal(AcrMfa, OAuthFlows.Payload(idToken).GetProperty("acr").GetString());
        Assert.Contains("otp", Amr(idToken));
        Assert.Contains("mfa", Amr(idToken));

        // The password-only session the step replaced is over: its copied cookie no longer opens the account page.
        using var stolen = host.CreateClient(cookies: copied);
        Assert.Equal(HttpStatusCode.Redirect, (await stolen.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)).StatusCode);
    }

    [Fact]
    public async Task A_device_code_approved_by_a_password_only_session_gets_no_token_for_a_client_that_requires_mfa()
    {
        using var device = host.CreateClient();
        var (status, authorization) = await OAuthFlows.PostFormAsync(device, "connect/device",
            new Dictionary<string, string> { ["client_id"] = MfaPolicyHost.DeviceClient, ["scope"] = "openid" });
        Assert.Equal(HttpStatusCode.OK, status);
        var userCode = authorization.GetProperty("user_code").GetString()!;

        // The attacker has only dave's password: signs in on the verification page and allows the device.
        using var browser = host.CreateClient();
        var verify = "/connect/verify?user_code=" + Uri.EscapeDataString(userCode);
        Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(browser, "dave", returnUrl: verify)).StatusCode);
        var page = await browser.GetStringAsync(new Uri(verify.TrimStart('/'), UriKind.Relative), Personas.Cancel);
        using var allowed = await browser.PostAsync(new Uri("connect/verify", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["user_code"] = userCode,
            ["decision"] = "accept",
            ["__RequestVerificationToken"] = OAuthFlows.AntiForgeryToken(page),
        }), Personas.Cancel);

        var (pollStatus, body) = await OAuthFlows.PostFormAsync(device, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = "urn:ietf:params:oauth:grant-type:device_code",
            ["device_code"] = authorization.GetProperty("device_code").GetString()!,
            ["client_id"] = MfaPolicyHost.DeviceClient,
        });

        Assert.Equal(HttpStatusCode.BadRequest, pollStatus);
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
        Assert.False(body.TryGetProperty("access_token", out _));
    }

    [Fact]
    public async Task Acr_values_asking_for_mfa_step_up_a_password_session_and_a_password_sign_in_says_acr_pwd()
    {
        using var http = host.CreateClient();
        await EnrolAuthenticatorAsync(http, "erin");

        // Without acr_values (and no policy for demo-crm, openid profile), erin's password-only session gets a code: acr says so.
        var plain = await OAuthFlows.SignInAsync(http, "erin", Personas.Passwords["erin"], "openid profile");
        var idToken = plain.GetProperty("id_token").GetString()!;
        Assert.Equal(AcrPassword, OAuthFlows.Payload(idToken).GetProperty("acr").GetString());
        Assert.Equal(["pwd"], Amr(idToken));

        var parameters = OAuthFlows.AuthorizeParameters(OAuthFlows.Pkce().Challenge, scope: "openid profile");
        parameters["acr_values"] = AcrMfa;
        var answer = await http.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(parameters), UriKind.Relative), Personas.Cancel);

        Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
        Assert.StartsWith("/account/login-2fa?ReturnUrl=", answer.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_without_a_second_factor_asking_for_a_scope_that_needs_one_is_sent_to_enrol_and_gets_no_code()
    {
        using var http = host.CreateClient();
        Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(http, "frank")).StatusCode);

        var parameters = OAuthFlows.AuthorizeParameters(OAuthFlows.Pkce().Challenge, scope: "openid email");
        var answer = await http.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(parameters), UriKind.Relative), Personas.Cancel);

        Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
        Assert.Equal("/account/two-factor?required=app", answer.Headers.Location!.OriginalString);
        var page = await http.GetStringAsync(answer.Headers.Location, Personas.Cancel);
        Assert.Contains("id=\"required-for-app\"", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_role_that_needs_mfa_gets_no_code_on_a_password_sign_in_and_prompt_none_says_interaction_required()
    {
        using var http = host.CreateClient();
        Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(http, "bob")).StatusCode);

        var parameters = OAuthFlows.AuthorizeParameters(OAuthFlows.Pkce().Challenge, scope: "openid profile");
        var answer = await http.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(parameters), UriKind.Relative), Personas.Cancel);
        Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
        Assert.Equal("/account/two-factor?required=app", answer.Headers.Location!.OriginalString);

        // OpenID Connect Core §3.1.2.6: with prompt=none the client hears at once that the user must interact.
        parameters["prompt"] = "none";
        var silent = await http.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(parameters), UriKind.Relative), Personas.Cancel);
        Assert.Equal(HttpStatusCode.Redirect, silent.StatusCode);
        var query = QueryHelpers.ParseQuery(silent.Headers.Location!.Query);
        Assert.StartsWith(OAuthFlows.CrmRedirect, silent.Headers.Location!.AbsoluteUri, StringComparison.Ordinal);
        Assert.Equal("interaction_required", query["error"].ToString());
        Assert.False(query.ContainsKey("code"));
    }

    [Fact]
    public async Task A_password_only_access_token_is_not_exchanged_for_a_scope_that_needs_mfa()
    {
        using var http = host.CreateClient();
        var tokens = await OAuthFlows.SignInAsync(http, "alice", Personas.Passwords["alice"], "openid crm.api");

        var (status, body) = await OAuthFlows.PostFormAsync(http, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = "urn:ietf:params:oauth:grant-type:token-exchange",
            ["subject_token"] = tokens.GetProperty("access_token").GetString()!,
            ["subject_token_type"] = "urn:ietf:params:oauth:token-type:access_token",
            ["scope"] = "crm.reports",
        }, (OAuthFlows.CrmClient, OAuthFlows.CrmSecret));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
        Assert.Contains("two-step verification", body.GetProperty("error_description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stale_session_cannot_turn_off_two_step_verification_even_with_the_password()
    {
        using var http = host.CreateClient();
        var enrolment = await EnrolAuthenticatorAsync(http, "grace");
        await Task.Delay(TimeSpan.FromSeconds(3.5), Personas.Cancel);

        var refused = await PostFormAsync(http, "account/two-factor", "account/two-factor?handler=Disable",
            new Dictionary<string, string> { ["Password"] = Personas.Passwords["grace"] });
        var html = await refused.Content.ReadAsStringAsync(Personas.Cancel);
        Assert.Contains("id=\"fresh-sign-in-required\"", html, StringComparison.Ordinal);
        Assert.Contains("Two-step verification is <strong>on</strong>", html, StringComparison.Ordinal);

        // A fresh sign-in with both factors may turn it off.
        Assert.StartsWith("/account/login-2fa", (await SignInAsync(http, "grace")).Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await SecondFactorAsync(http, Totp.Code(enrolment.Key, DateTimeOffset.UtcNow))).StatusCode);
        var done = await PostFormAsync(http, "account/two-factor", "account/two-factor?handler=Disable",
            new Dictionary<string, string> { ["Password"] = Personas.Passwords["grace"] });
        Assert.Contains("Two-step verification is <strong>off</strong>", await done.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Prompt_login_with_a_live_session_shows_the_login_page_again_and_prompt_none_past_max_age_is_login_required()
    {
        using var http = host.CreateClient();
        Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(http, "ed")).StatusCode);

        var parameters = OAuthFlows.AuthorizeParameters(OAuthFlows.Pkce().Challenge, scope: "openid profile");
        parameters["prompt"] = "login";
        var again = await http.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(parameters), UriKind.Relative), Personas.Cancel);
        Assert.Equal(HttpStatusCode.Redirect, again.StatusCode);
        Assert.Contains("/account/login", again.Headers.Location!.OriginalString, StringComparison.Ordinal);

        await Task.Delay(TimeSpan.FromSeconds(1.1), Personas.Cancel);
        var silent = OAuthFlows.AuthorizeParameters(OAuthFlows.Pkce().Challenge, scope: "openid profile");
        silent["prompt"] = "none";
        silent["max_age"] = "1";
        var answer = await http.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(silent), UriKind.Relative), Personas.Cancel);
        Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
        Assert.Equal("login_required", QueryHelpers.ParseQuery(answer.Headers.Location!.Query)["error"].ToString());
    }
}
