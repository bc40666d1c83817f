using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using CrmSecurity.EndToEnd.Tests.Admin;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Account;

/// <summary>
/// Passkeys in headless Chromium with a CDP virtual authenticator, through the real service: registration on the account
/// page, passwordless sign-in, a passkey as the second step, removal, and the attacks a relying party must refuse. Each test
/// uses its own demo user, so the tests share one service.
/// </summary>
public sealed partial class PasskeyTests(PasskeySite site) : IClassFixture<PasskeySite>
{
    [Fact]
    public async Task Alice_registers_a_passkey_signs_out_and_signs_in_with_it_alone_and_her_ID_token_says_so()
    {
        var page = await site.NewPageWithAuthenticatorAsync();
        await PasskeySite.SignInWithPasswordAsync(page, "alice", "Alice-Sells-Widgets-42", "/account/passkeys");
        await Assertions.Expect(page.Locator(".empty")).ToContainTextAsync("no passkey yet");
        await AdminSite.ScreenshotAsync(page, "account-passkeys-empty");

        await PasskeySite.RegisterPasskeyAsync(page, "Work laptop");
        var table = page.GetByRole(AriaRole.Table, new() { Name = "Your passkeys" });
        await Assertions.Expect(table).ToContainTextAsync("Work laptop");
        await Assertions.Expect(table).ToContainTextAsync("Not used yet");
        // Times in Alice's own zone (America/Los_Angeles), named in the column header.
        await Assertions.Expect(table.GetByRole(AriaRole.Columnheader, new() { Name = "Added (America/Los_Angeles)" })).ToBeVisibleAsync();

        await table.GetByLabel("New name for Work laptop").FillAsync("Alice's laptop");
        await table.GetByRole(AriaRole.Button, new() { Name = "Rename" }).ClickAsync();
        await Assertions.Expect(table).ToContainTextAsync("Alice's laptop");
        await AdminSite.ScreenshotAsync(page, "account-passkeys");

        // Signed out for real, then back with the passkey only: no user name, no password.
        await page.GotoAsync("/connect/logout");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.GotoAsync("/account/login?ReturnUrl=%2Faccount%2Fpasskeys");
        await AdminSite.ScreenshotAsync(page, "sign-in-with-passkey");
        await page.GetByRole(AriaRole.Button, new() { Name = "Use a passkey" }).ClickAsync();
        await page.WaitForAddressAsync(url => new Uri(url).AbsolutePath == "/account/passkeys");
        await Assertions.Expect(page.GetByRole(AriaRole.Table, new() { Name = "Your passkeys" })).Not.ToContainTextAsync("Not used yet");

        var claims = await site.AuthorizationCodeFlowAsync(page);
        Assert.False(string.IsNullOrEmpty(claims.GetProperty("sub").GetString()));
        // RFC 8176: a device-bound key (hwk) verified by the authenticator (UV) is multi-factor; no password was used.
        Assert.Equal(["hwk", "mfa"], PasskeySite.Amr(claims));
        Assert.Equal("urn:crm-security:acr:mfa", claims.GetProperty("acr").GetString());
        Assert.Contains("login amr=hwk,mfa; passkey", await site.AccessEventDetailsAsync("alice", "amr=hwk,mfa"));
        Assert.Contains("mfa_change passkey_registered: Work laptop", await site.AccessEventDetailsAsync("alice", "passkey_registered"));
    }

    [Fact]
    public async Task The_sign_in_page_offers_the_passkey_in_the_user_names_autofill()
    {
        var page = await site.NewPageWithAuthenticatorAsync(conditionalUi: true);
        await PasskeySite.SignInWithPasswordAsync(page, "wade", "Wade-Admins-The-West-42", "/account/passkeys");
        await PasskeySite.RegisterPasskeyAsync(page, "Wade's key");
        await page.Context.ClearCookiesAsync();

        // WebAuthn Level 3 §5.1.4.1 conditional mediation: the page asks as it loads; picking the passkey signs in.
        await page.GotoAsync("/account/login?ReturnUrl=%2Faccount");
        await page.WaitForAddressAsync(url => new Uri(url).AbsolutePath == "/account");
        await Assertions.Expect(page.GetByRole(AriaRole.Table, new() { Name = "Where you are signed in" }).GetByRole(AriaRole.Row).Filter(new() { HasText = "This browser" }))
            .ToContainTextAsync("passkey");
    }

    [Fact]
    public async Task A_passkey_is_the_second_step_after_the_password_and_satisfies_an_mfa_step_up()
    {
        var page = await site.NewPageWithAuthenticatorAsync();
        await PasskeySite.SignInWithPasswordAsync(page, "ed", "Ed-Sells-In-The-East-42", "/account/passkeys");
        await PasskeySite.RegisterPasskeyAsync(page, "Ed's phone");
        await page.Context.ClearCookiesAsync();

        await PasskeySite.SignInWithPasswordAsync(page, "ed", "Ed-Sells-In-The-East-42", "/account");
        var claims = await site.AuthorizationCodeFlowAsync(page, acrValues: "urn:crm-security:acr:mfa", stepUp: async stepUpPage =>
        {
            await stepUpPage.WaitForAddressAsync(url => new Uri(url).AbsolutePath == "/account/login-2fa");
            await AdminSite.ScreenshotAsync(stepUpPage, "sign-in-second-step-passkey");
            await stepUpPage.GetByRole(AriaRole.Button, new() { Name = "Use a passkey" }).ClickAsync();
        });

        Assert.Equal(["pwd", "hwk", "mfa"], PasskeySite.Amr(claims));
        Assert.Equal("urn:crm-security:acr:mfa", claims.GetProperty("acr").GetString());
    }

    [Fact]
    public async Task A_removed_passkey_no_longer_signs_in()
    {
        var page = await site.NewPageWithAuthenticatorAsync();
        await PasskeySite.SignInWithPasswordAsync(page, "carol", "Carol-Reads-The-Logs-42", "/account/passkeys");
        await PasskeySite.RegisterPasskeyAsync(page, "Meeting-room key");

        await page.GetByRole(AriaRole.Button, new() { Name = "Remove the passkey Meeting-room key" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Remove the passkey “Meeting-room key”?" })).ToBeVisibleAsync();
        await AdminSite.ScreenshotAsync(page, "account-passkeys-remove");
        await page.GetByRole(AriaRole.Button, new() { Name = "Remove passkey" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status).First).ToContainTextAsync("was removed");
        await Assertions.Expect(page.Locator(".empty")).ToContainTextAsync("no passkey yet");
        Assert.Contains("mfa_change passkey_removed: Meeting-room key", await site.AccessEventDetailsAsync("carol", "passkey_removed"));

        // The authenticator still holds the key; the service no longer knows it.
        await page.Context.ClearCookiesAsync();
        await page.GotoAsync("/account/login");
        await page.GetByRole(AriaRole.Button, new() { Name = "Use a passkey" }).ClickAsync();
        await Assertions.Expect(page.Locator("#passkey-error")).ToContainTextAsync("That passkey was not accepted");
        await AdminSite.ScreenshotAsync(page, "sign-in-passkey-refused");
    }

    [Fact]
    public async Task Another_users_passkey_is_refused_as_the_second_step()
    {
        // Bob has a passkey of his own; Erin knows Bob's password and answers Bob's second step with her own passkey.
        var bob = await site.NewPageWithAuthenticatorAsync();
        await PasskeySite.SignInWithPasswordAsync(bob, "bob", "Bob-Manages-The-Team-42", "/account/passkeys");
        await PasskeySite.RegisterPasskeyAsync(bob, "Bob's laptop");

        var erin = await site.NewPageWithAuthenticatorAsync();
        await PasskeySite.SignInWithPasswordAsync(erin, "erin", "Erin-Solves-Cases-42", "/account/passkeys");
        await PasskeySite.RegisterPasskeyAsync(erin, "Erin's key");
        await erin.Context.ClearCookiesAsync();

        await PasskeySite.SignInWithPasswordAsync(erin, "bob", "Bob-Manages-The-Team-42", "/account");
        // The options name Bob's credentials only; Erin's script drops that list so her authenticator answers with her key.
        await erin.RouteAsync("**/account/login-2fa?handler=PasskeyOptions", async route =>
        {
            var response = await route.FetchAsync();
            var options = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(await response.TextAsync())!;
            options.Remove("allowCredentials");
            await route.FulfillAsync(new() { Response = response, Body = JsonSerializer.Serialize(options) });
        });
        await erin.GotoAsync("/connect/authorize?client_id=demo-crm&response_type=code&scope=openid&redirect_uri=" + Uri.EscapeDataString("http://localhost:5081/signin-oidc")
            + "&state=s&nonce=n&code_challenge=" + new string('A', 43) + "&code_challenge_method=S256&acr_values=" + Uri.EscapeDataString("urn:crm-security:acr:mfa"));
        await erin.WaitForAddressAsync(url => new Uri(url).AbsolutePath == "/account/login-2fa");
        await erin.GetByRole(AriaRole.Button, new() { Name = "Use a passkey" }).ClickAsync();

        await Assertions.Expect(erin.Locator("#passkey-error")).ToContainTextAsync("That passkey was not accepted");
        // Bob's account counts the failure (towards lockout) and says why.
        Assert.Contains("login_failed passkey_rejected", await site.AccessEventDetailsAsync("bob", "passkey_rejected"));
        // Still only Bob's password session: the account page shows no passkey sign-in for this browser.
        await erin.GotoAsync("/account");
        await Assertions.Expect(erin.GetByRole(AriaRole.Table, new() { Name = "Where you are signed in" }).GetByRole(AriaRole.Row).Filter(new() { HasText = "This browser" }))
            .ToContainTextAsync("password");
        await Assertions.Expect(erin.GetByRole(AriaRole.Table, new() { Name = "Where you are signed in" }).GetByRole(AriaRole.Row).Filter(new() { HasText = "This browser" }))
            .Not.ToContainTextAsync("passkey");
    }

    [Fact]
    public async Task A_replayed_assertion_with_its_challenge_cookie_is_refused()
    {
        var page = await site.NewPageWithAuthenticatorAsync();
        await PasskeySite.SignInWithPasswordAsync(page, "frank", "Frank-Counts-Money-42", "/account/passkeys");
        await PasskeySite.RegisterPasskeyAsync(page, "Frank's key");
        await page.Context.ClearCookiesAsync();

        string? body = null, cookie = null;
        await page.RouteAsync("**/account/login?handler=Passkey", async route =>
        {
            body = route.Request.PostData;
            cookie = (await route.Request.AllHeadersAsync()).GetValueOrDefault("cookie");
            await route.ContinueAsync();
        });
        await page.GotoAsync("/account/login?ReturnUrl=%2Faccount");
        await page.GetByRole(AriaRole.Button, new() { Name = "Use a passkey" }).ClickAsync();
        await page.WaitForAddressAsync(url => new Uri(url).AbsolutePath == "/account");
        Assert.NotNull(body);
        Assert.Contains("crm.passkey=", cookie, StringComparison.Ordinal);

        // The same assertion, the same challenge cookie, the same anti-forgery pair: everything the browser sent.
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = site.BaseAddress };
        using var replay = new HttpRequestMessage(HttpMethod.Post, "/account/login?handler=Passkey") { Content = new StringContent(body!, System.Text.Encoding.UTF8, "application/x-www-form-urlencoded") };
        replay.Headers.Add("Cookie", cookie);
        using var response = await http.SendAsync(replay, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // the page again, with its error; no redirect into the account
        Assert.Contains("That passkey was not accepted", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
        Assert.DoesNotContain(response.Headers.TryGetValues("Set-Cookie", out var set) ? set : [], c => c.StartsWith(".AspNetCore.Identity.Application=", StringComparison.Ordinal) && !c.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase));
        Assert.Contains("login_failed passkey_challenge_unknown_or_used", await site.AccessEventDetailsAsync("frank", "passkey_challenge"));
    }

    [Fact]
    public async Task Registering_needs_a_signed_in_session_and_the_anti_forgery_token()
    {
        using var anonymous = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = site.BaseAddress };
        var (token, _) = await AntiForgeryAsync(anonymous);
        using var noSession = await anonymous.PostAsync("/account/passkeys?handler=CreationOptions",
            new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token }), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Redirect, noSession.StatusCode);
        Assert.StartsWith("/account/login", noSession.Headers.Location!.PathAndQuery, StringComparison.Ordinal);

        // Grace's own session cookie, sent by another site's form (no anti-forgery token): refused before any ceremony starts.
        var page = await site.NewPageWithAuthenticatorAsync();
        await PasskeySite.SignInWithPasswordAsync(page, "grace", "Grace-Runs-Campaigns-42", "/account");
        var cookies = string.Join("; ", (await page.Context.CookiesAsync()).Select(c => $"{c.Name}={c.Value}"));
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = site.BaseAddress };
        foreach (var handler in new[] { "CreationOptions", "Register", "Remove" })
        {
            using var forged = new HttpRequestMessage(HttpMethod.Post, "/account/passkeys?handler=" + handler)
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["Name"] = "attacker's key", ["Credential"] = "{}" }),
            };
            forged.Headers.Add("Cookie", cookies);
            using var response = await http.SendAsync(forged, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
    }

    [Fact]
    public async Task The_relying_party_id_comes_from_configuration_never_from_the_Host_header()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = site.BaseAddress };
        var (token, _) = await AntiForgeryAsync(http);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/account/login?handler=PasskeyOptions")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token }),
        };
        request.Headers.Host = "evil.example";
        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var options = JsonDocument.Parse(body);
        // WebAuthn Level 3 §5.1.4: rpId is the configured relying party (the issuer's host here), whatever Host said.
        Assert.Equal("localhost", options.RootElement.GetProperty("rpId").GetString());
        Assert.DoesNotContain("evil.example", body, StringComparison.Ordinal);
    }

    /// <summary>The sign-in page's anti-forgery token (its cookie stays in the client's cookie container).</summary>
    private static async Task<(string Token, string Html)> AntiForgeryAsync(HttpClient http)
    {
        var html = await http.GetStringAsync("/account/login", TestContext.Current.CancellationToken);
        return (TokenPattern().Match(html).Groups[1].Value, html);
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex TokenPattern();
}
