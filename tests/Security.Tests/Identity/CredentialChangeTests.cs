using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Identity.AccountBrowser;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>
/// Issue 11, what the attack did not try (OWASP ASVS 4.0.3 V3.3.3, V2.5; RFC 9700 §4.14): sessions and tokens when
/// credentials change. Whoever stole a session or a refresh token must lose it when the owner changes or resets the
/// password, turns two-step verification on or off, or renews the recovery codes; the session that made the change stays.
/// Before, a password change ended other cookies only, and every refresh token kept working.
/// </summary>
public sealed partial class CredentialChangeTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    [Fact]
    public async Task Changing_the_password_ends_the_thiefs_session_and_refresh_token_and_keeps_the_owners()
    {
        var thief = await StolenSessionAsync("grace");
        using var owner = host.CreateClient();
        await SignInAsync(owner, "grace");

        var changed = await PostFormAsync(owner, "account", "account?handler=ChangePassword", new Dictionary<string, string>
        {
            ["CurrentPassword"] = Personas.Passwords["grace"], ["NewPassword"] = "grace-walks-a-new-path-77",
        });
        Assert.Contains("Your password was changed.", await changed.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);

        await AssertEndedAsync(thief);
        Assert.Equal(HttpStatusCode.OK, (await owner.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)).StatusCode);
        // ASVS V2.2.3: the owner hears of it, in case it was not them.
        Assert.Contains(await NoticesAsync(host, "grace@demo.example"), text => text.Contains("Your password was changed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_password_reset_ends_every_session_and_token_the_user_had()
    {
        var thief = await StolenSessionAsync("wade");
        using var owner = host.CreateClient();
        await PostFormAsync(owner, "account/forgot-password", "account/forgot-password", new Dictionary<string, string> { ["Email"] = "wade@demo.example" });
        var (_, link) = await ResetMailAsync(host, "wade@demo.example");
        var page = await owner.GetStringAsync(link.PathAndQuery.TrimStart('/'), Personas.Cancel);
        var reset = await owner.PostAsync(new Uri("account/reset-password", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["User"] = Hidden(page, "User"), ["Token"] = Hidden(page, "Token"), ["NewPassword"] = "wade-starts-over-today-31",
            ["__RequestVerificationToken"] = OAuthFlows.AntiForgeryToken(page),
        }), Personas.Cancel);
        Assert.Contains("Your password was changed.", await reset.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);

        await AssertEndedAsync(thief);
        Assert.Contains(await NoticesAsync(host, "wade@demo.example"), text => text.Contains("Your password was reset", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Turning_two_step_on_renewing_the_codes_and_turning_it_off_each_end_the_other_sessions_and_grants()
    {
        var before = await StolenSessionAsync("carol");
        using var owner = host.CreateClient();
        var enrolment = await EnrolAuthenticatorAsync(owner, "carol");
        await AssertEndedAsync(before);

        var duringCodes = await StolenSessionAsync("carol", Totp.Code(enrolment.Key, DateTimeOffset.UtcNow));
        var renewed = await PostFormAsync(owner, "account/two-factor", "account/two-factor?handler=NewRecoveryCodes",
            new Dictionary<string, string> { ["Password"] = Personas.Passwords["carol"] });
        Assert.Contains("id=\"recovery-codes\"", await renewed.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);
        await AssertEndedAsync(duringCodes);

        var duringOff = await StolenSessionAsync("carol", Totp.Code(enrolment.Key, DateTimeOffset.UtcNow.AddSeconds(30)));
        var off = await PostFormAsync(owner, "account/two-factor", "account/two-factor?handler=Disable",
            new Dictionary<string, string> { ["Password"] = Personas.Passwords["carol"] });
        Assert.Contains("Two-step verification is off.", await off.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);
        await AssertEndedAsync(duringOff);

        Assert.Equal(HttpStatusCode.OK, (await owner.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)).StatusCode);
        Assert.Equal(3, (await NoticesAsync(host, "carol@demo.example")).Count);
    }

    [Fact]
    public async Task Turning_two_step_off_with_a_stolen_session_alone_needs_the_password_and_changes_nothing()
    {
        using var owner = host.CreateClient();
        var enrolment = await EnrolAuthenticatorAsync(owner, "alice");

        var refused = await PostFormAsync(owner, "account/two-factor", "account/two-factor?handler=Disable",
            new Dictionary<string, string> { ["Password"] = "not-alices-password" });
        Assert.Contains("That password was not accepted. Nothing was changed.", await refused.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);

        using var next = host.CreateClient();
        Assert.StartsWith("/account/login-2fa", (await SignInAsync(next, "alice")).Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await SecondFactorAsync(next, Totp.Code(enrolment.Key, DateTimeOffset.UtcNow))).StatusCode);
    }

    [Fact]
    public async Task Opening_the_enrolment_page_ends_no_other_session()
    {
        var other = await StolenSessionAsync("ed");
        using var owner = host.CreateClient();
        await SignInAsync(owner, "ed");

        Assert.Equal(HttpStatusCode.OK, (await owner.GetAsync(new Uri("account/two-factor", UriKind.Relative), Personas.Cancel)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await other.Browser.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)).StatusCode);
        var (status, _) = await OAuthFlows.RefreshAsync(other.Browser, other.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, status);
    }

    /// <summary>A browser session of a user and the refresh and access tokens demo-crm got in it.</summary>
    private sealed record Stolen(HttpClient Browser, string RefreshToken, string AccessToken);

    private async Task<Stolen> StolenSessionAsync(string user, string? secondFactor = null)
    {
        var browser = host.CreateClient();
        JsonElement tokens = secondFactor is null
            ? await OAuthFlows.SignInAsync(browser, user, Personas.Passwords[user], "openid offline_access crm.api")
            : await CodeFlowWithSecondFactorAsync(browser, user, secondFactor, recovery: false, "openid offline_access crm.api");
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)).StatusCode);
        return new Stolen(browser, tokens.GetProperty("refresh_token").GetString()!, tokens.GetProperty("access_token").GetString()!);
    }

    private static async Task AssertEndedAsync(Stolen stolen)
    {
        var page = await stolen.Browser.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel);
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.Contains("/account/login", page.Headers.Location!.OriginalString, StringComparison.Ordinal);

        var (status, body) = await OAuthFlows.RefreshAsync(stolen.Browser, stolen.RefreshToken);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
        Assert.False(await OAuthFlows.IsActiveAsync(stolen.Browser, stolen.AccessToken));
        stolen.Browser.Dispose();
    }

    private static string Hidden(string page, string name) =>
        WebUtility.HtmlDecode(Regex.Match(page, $"name=\"{name}\" value=\"(?<v>[^\"]*)\"").Groups["v"].Value);
}
