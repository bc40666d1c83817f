using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using CrmSecurity.CrmAuthorization.Tests.Support;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.CrmAuthorization.Tests.AspNetCore;

/// <summary>
/// The host with the analyzer's view of risk replaced at its boundary (<see cref="IUserRisks"/>): a test names the users
/// with an open critical finding, which the shipped policies/risk-access.json turns into a <c>step_up: mfa</c> obligation.
/// </summary>
public sealed class RiskyUsersHost : IdentityHost
{
    public ConcurrentDictionary<string, UserRisk> Risks { get; } = new(StringComparer.Ordinal);

    protected override void ConfigureServices(IServiceCollection services) => services.AddSingleton<IUserRisks>(new Risky(Risks));

    private sealed class Risky(ConcurrentDictionary<string, UserRisk> risks) : IUserRisks
    {
        public UserRisk? Find(string userId) => risks.TryGetValue(userId, out var risk) ? risk : null;
    }
}

/// <summary>
/// Issue 15, step-up from a CRM API through AddCrmAuthorization: a decision that allows but obliges <c>step_up: mfa</c> is
/// not acted on with a password-only token; the API answers RFC 9470 §3 (401, <c>insufficient_user_authentication</c>,
/// <c>acr_values</c> from the service's <c>acr_values_supported</c>, <c>max_age</c>), and a token from a fresh sign-in
/// with a second factor is let through.
/// </summary>
public sealed class CrmStepUpTests(RiskyUsersHost host) : IClassFixture<RiskyUsersHost>
{
    private const string AcrMfa = "urn:crm-security:acr:mfa";

    private string Id(string userName) => host.Services.GetRequiredService<AuthorizationModel>().Current.Users.Single(u => u.UserName == userName).Id;

    private Contact[] Contacts() =>
        [new("c-1", "Jane", "Doe", "jane.doe@example.com", "+44 20 7946 0958", "1980-02-03", "AB123456C", Id("bob"), "sales-west", 7)];

    private void Critical(string userName) =>
        host.Risks[Id(userName)] = new UserRisk("f-stepup-" + userName, "critical", "bulk_export", "rows exported: typical 120, actual 48,000", DateTimeOffset.UtcNow.AddHours(-1));

    [Fact]
    public async Task A_password_only_token_of_a_user_the_decision_obliges_to_step_up_gets_401_insufficient_user_authentication_and_no_data()
    {
        Critical("alice");
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts());
        using var browser = host.CreateClient();
        using var http = crm.CreateClient(await TokenAsync(browser, "alice", AlicePassword));

        using var response = await http.GetAsync(new Uri("contacts/c-1", UriKind.Relative), Cancel);

        // The model allows alice to read contact c-1; the open critical finding obliges a second factor first.
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = response.Headers.WwwAuthenticate.ToString();
        Assert.StartsWith("Bearer error=\"insufficient_user_authentication\"", challenge, StringComparison.Ordinal);
        Assert.Contains($"acr_values=\"{AcrMfa}\"", challenge, StringComparison.Ordinal);
        Assert.Contains("max_age=\"900\"", challenge, StringComparison.Ordinal);
        Assert.DoesNotContain("jane", await response.Content.ReadAsStringAsync(Cancel), StringComparison.OrdinalIgnoreCase);

        // The value asked for is one the service advertises (OpenID Connect Discovery acr_values_supported).
        using var discovery = JsonDocument.Parse(await browser.GetStringAsync(new Uri(".well-known/openid-configuration", UriKind.Relative), Cancel));
        Assert.Contains(AcrMfa, discovery.RootElement.GetProperty("acr_values_supported").EnumerateArray().Select(v => v.GetString()));
    }

    [Fact]
    public async Task After_a_sign_in_with_a_second_factor_the_same_user_may_act_until_it_is_older_than_the_step_up_max_age()
    {
        Critical("erin");
        using var browser = host.CreateClient();
        var key = await EnrolAuthenticatorAsync(browser, "erin", "Erin-Solves-Cases-42");
        var token = await TokenWithSecondFactorAsync(host.CreateClient(), "erin", "Erin-Solves-Cases-42", key);
        Assert.Contains("mfa", Payload(token).GetProperty("amr").EnumerateArray().Select(v => v.GetString()));

        await using (var crm = await SampleCrm.StartAsync(host.Issuer, Contacts()))
        {
            using var http = crm.CreateClient(token);
            using var response = await http.GetAsync(new Uri("contacts", UriKind.Relative), Cancel);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // The same token, once its sign-in is older than the app's StepUpMaxAge, must step up again (RFC 9470 §3 max_age).
        await using var strict = await SampleCrm.StartAsync(host.Issuer, Contacts(), o => o.StepUpMaxAge = TimeSpan.FromSeconds(1));
        await Task.Delay(TimeSpan.FromSeconds(2.1), Cancel);
        using var stale = strict.CreateClient(token);
        using var refused = await stale.GetAsync(new Uri("contacts", UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("max_age=\"1\"", refused.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_check_carries_the_risk_refusal_and_the_step_up_obligation_that_the_cached_profile_does_not_know()
    {
        // The shipped policy denies delete, share, assign and export at critical; the profile alone would allow update.
        Critical("bob");
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts());
        var decisions = crm.Services.GetRequiredService<CrmDecisions>();
        var principal = new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity([new("sub", Id("bob"))], "test"));

        var export = await decisions.CheckAsync(principal, "contact", CrmAction.Export, cancellationToken: Cancel);
        var read = await decisions.CheckAsync(principal, "contact", CrmAction.Read, cancellationToken: Cancel);

        Assert.False(export.Allowed);
        Assert.Equal("risk", export.Basis);
        Assert.True((await decisions.ProfileAsync(principal, Cancel)).Holds("contact", CrmAction.Export)); // what the handler used to act on
        Assert.True(read.Allowed);
        Assert.Equal("step_up", Assert.Single(read.Obligations!).Type);
    }

    [Fact]
    public async Task A_request_that_a_step_up_would_not_let_through_is_refused_with_403_not_sent_to_step_up()
    {
        // bob's open critical finding obliges a step-up for read and denies export (shipped policy): a page needing both
        // would refuse him after his second factor anyway, so he is not sent round a sign-in for nothing.
        Critical("bob");
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts());
        using var browser = host.CreateClient();
        using var http = crm.CreateClient(await TokenAsync(browser, "bob", "Bob-Manages-The-Team-42"));

        using var both = await http.GetAsync(new Uri("contacts/export", UriKind.Relative), Cancel);
        using var read = await http.GetAsync(new Uri("contacts", UriKind.Relative), Cancel);

        Assert.Equal(HttpStatusCode.Forbidden, both.StatusCode);
        Assert.DoesNotContain("insufficient_user_authentication", both.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, read.StatusCode); // read alone: a step-up is all it lacks
        Assert.Contains("insufficient_user_authentication", read.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_apps_own_authorization_result_handler_keeps_answering_refusals_and_the_step_up_still_works()
    {
        // The app registered its own refusal answer before AddCrmAuthorization; the library decorates it, not replaces it.
        Critical("alice");
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts(), services: s => s.AddSingleton<IAuthorizationMiddlewareResultHandler, AppRefusals>());
        using var browser = host.CreateClient();
        using var http = crm.CreateClient(await TokenAsync(browser, "alice", AlicePassword));

        using var refused = await http.GetAsync(new Uri("invoices", UriKind.Relative), Cancel); // no role of alice's grants invoice:read
        using var stepUp = await http.GetAsync(new Uri("contacts/c-1", UriKind.Relative), Cancel);

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(AppRefusals.Body, await refused.Content.ReadAsStringAsync(Cancel));
        Assert.Equal(HttpStatusCode.Unauthorized, stepUp.StatusCode);
        Assert.Contains("insufficient_user_authentication", stepUp.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    /// <summary>An app's own answer to a refusal (its problem details, its page); everything else as ASP.NET Core does.</summary>
    private sealed class AppRefusals : IAuthorizationMiddlewareResultHandler
    {
        public const string Body = "refused by the app's own handler";

        private readonly AuthorizationMiddlewareResultHandler _default = new();

        public Task HandleAsync(RequestDelegate next, HttpContext context,
            AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
        {
            if (authorizeResult.Forbidden)
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                return context.Response.WriteAsync(Body, context.RequestAborted);
            }

            return _default.HandleAsync(next, context, policy, authorizeResult);
        }
    }

    private static async Task<string> TokenAsync(HttpClient browser, string user, string password)
    {
        var (verifier, challenge) = Pkce();
        var code = CodeFrom(await AuthorizeAsync(browser, AuthorizeParameters(challenge, scope: "openid crm.api"), user, password));
        var (status, tokens) = await RedeemAsync(browser, code, verifier);
        Assert.True(status == HttpStatusCode.OK, $"code redemption failed: {status} {tokens}");
        return tokens.GetProperty("access_token").GetString()!;
    }

    /// <summary>Signs in on the service's pages and turns on an authenticator app, as the user would; returns its key.</summary>
    private static async Task<string> EnrolAuthenticatorAsync(HttpClient browser, string user, string password)
    {
        Assert.Equal(HttpStatusCode.Redirect, (await SubmitLoginAsync(browser, "/account", user, password)).StatusCode);
        var page = await browser.GetStringAsync(new Uri("account/two-factor", UriKind.Relative), Cancel);
        var shown = System.Text.RegularExpressions.Regex.Match(page, "id=\"shared-key\">(?<key>[a-z2-7 ]+)<").Groups["key"].Value;
        Assert.NotEmpty(shown);
        var key = shown.Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant();
        using var enable = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Code"] = Totp.Code(key, DateTimeOffset.UtcNow.AddSeconds(-30)),
            ["Password"] = password,
            ["__RequestVerificationToken"] = AntiForgeryToken(page),
        });
        using var enabled = await browser.PostAsync(new Uri("account/two-factor?handler=Enable", UriKind.Relative), enable, Cancel);
        Assert.Contains("Two-step verification is <strong>on</strong>", await enabled.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
        return key;
    }

    /// <summary>The code flow with the password and then the authenticator's code, to the access token.</summary>
    private static async Task<string> TokenWithSecondFactorAsync(HttpClient browser, string user, string password, string key)
    {
        var (verifier, challenge) = Pkce();
        var first = await browser.GetAsync(new Uri(AuthorizeUrl(AuthorizeParameters(challenge, scope: "openid crm.api")), UriKind.Relative), Cancel);
        var returnUrl = QueryHelpers.ParseQuery(first.Headers.Location!.OriginalString[first.Headers.Location.OriginalString.IndexOf('?', StringComparison.Ordinal)..])["ReturnUrl"].ToString();
        var login = await SubmitLoginAsync(browser, returnUrl, user, password);
        Assert.StartsWith("/account/login-2fa", login.Headers.Location!.OriginalString, StringComparison.Ordinal);
        var page = await browser.GetStringAsync(login.Headers.Location, Cancel);
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Code"] = Totp.Code(key, DateTimeOffset.UtcNow),
            ["ReturnUrl"] = returnUrl,
            ["__RequestVerificationToken"] = AntiForgeryToken(page),
        });
        using var second = await browser.PostAsync(new Uri("account/login-2fa?ReturnUrl=" + Uri.EscapeDataString(returnUrl), UriKind.Relative), form, Cancel);
        Assert.Equal(HttpStatusCode.Redirect, second.StatusCode);
        var back = await browser.GetAsync(second.Headers.Location, Cancel);
        Assert.Equal(HttpStatusCode.Redirect, back.StatusCode);
        var (status, tokens) = await RedeemAsync(browser, CodeFrom(back.Headers.Location!), verifier);
        Assert.True(status == HttpStatusCode.OK, $"code redemption failed: {status} {tokens}");
        return tokens.GetProperty("access_token").GetString()!;
    }
}
