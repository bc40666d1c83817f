using System.Net;
using System.Text.RegularExpressions;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>
/// What a browser (or an attacker's script) does on the account pages, spelled out over HTTP: fetch a form for its
/// anti-forgery token, post it; enrol an authenticator; answer the second step. Nothing here reaches inside the host.
/// </summary>
public static partial class AccountBrowser
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>GETs <paramref name="formPage"/> for its anti-forgery token, then posts <paramref name="fields"/> to <paramref name="postTo"/>.</summary>
    public static async Task<HttpResponseMessage> PostFormAsync(
        HttpClient http, string formPage, string postTo, IDictionary<string, string> fields, Action<HttpRequestMessage>? adjust = null)
    {
        using var get = new HttpRequestMessage(HttpMethod.Get, formPage);
        adjust?.Invoke(get);
        using var page = await http.SendAsync(get, Cancel);
        var html = await page.Content.ReadAsStringAsync(Cancel);
        var form = new Dictionary<string, string>(fields) { ["__RequestVerificationToken"] = OAuthFlows.AntiForgeryToken(html) };
        var post = new HttpRequestMessage(HttpMethod.Post, postTo) { Content = new FormUrlEncodedContent(form) };
        adjust?.Invoke(post);
        return await http.SendAsync(post, Cancel);
    }

    public static Task<HttpResponseMessage> SignInAsync(HttpClient http, string user, string? password = null, string returnUrl = "/account") =>
        OAuthFlows.SubmitLoginAsync(http, returnUrl, user, password ?? Personas.Passwords[user]);

    public static Task<HttpResponseMessage> SecondFactorAsync(HttpClient http, string code, bool recovery = false, string returnUrl = "/account")
    {
        var fields = new Dictionary<string, string> { ["Code"] = code, ["ReturnUrl"] = returnUrl };
        if (recovery)
        {
            fields["Recovery"] = "true";
        }

        return PostFormAsync(http, "account/login-2fa?ReturnUrl=" + Uri.EscapeDataString(returnUrl), "account/login-2fa", fields);
    }

    /// <summary>An enrolled authenticator: its base32 key as the enrolment page showed it, and the recovery codes shown once.</summary>
    public sealed record Enrolment(string Key, IReadOnlyList<string> RecoveryCodes, string PageKeyText);

    /// <summary>
    /// Signs <paramref name="user"/> in on <paramref name="http"/> and turns on two-step verification with the key the page
    /// shows. The enrolment uses the code of the step before now, so later sign-ins have the current and later steps.
    /// </summary>
    public static async Task<Enrolment> EnrolAuthenticatorAsync(HttpClient http, string user)
    {
        Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(http, user)).StatusCode);
        var page = await http.GetStringAsync(new Uri("account/two-factor", UriKind.Relative), Cancel);
        var shown = SharedKey().Match(page).Groups["key"].Value;
        Assert.NotEmpty(shown);
        var enabled = await PostFormAsync(http, "account/two-factor", "account/two-factor?handler=Enable", new Dictionary<string, string>
        {
            ["Code"] = Totp.Code(shown, DateTimeOffset.UtcNow.AddSeconds(-30)),
            ["Password"] = Personas.Passwords[user],
        });
        var html = await enabled.Content.ReadAsStringAsync(Cancel);
        Assert.Contains("Two-step verification is <strong>on</strong>", html, StringComparison.Ordinal);
        var codes = RecoveryCode().Matches(html).Select(m => m.Groups["code"].Value).ToList();
        Assert.Equal(10, codes.Count);
        return new Enrolment(shown.Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant(), codes, shown);
    }

    /// <summary>The full code flow of demo-crm for a user whose sign-in needs a second step (<paramref name="secondFactor"/>).</summary>
    public static async Task<System.Text.Json.JsonElement> CodeFlowWithSecondFactorAsync(
        HttpClient http, string user, string secondFactor, bool recovery, string scope = "openid profile offline_access crm.api")
    {
        var (verifier, challenge) = OAuthFlows.Pkce();
        var authorize = OAuthFlows.AuthorizeUrl(OAuthFlows.AuthorizeParameters(challenge, scope: scope));
        var first = await http.GetAsync(new Uri(authorize, UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        var returnUrl = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(first.Headers.Location!.Query)["ReturnUrl"].ToString();
        var login = await SignInAsync(http, user, returnUrl: returnUrl);
        Assert.StartsWith("/account/login-2fa", login.Headers.Location!.OriginalString, StringComparison.Ordinal);
        var second = await SecondFactorAsync(http, secondFactor, recovery, returnUrl);
        Assert.Equal(HttpStatusCode.Redirect, second.StatusCode);
        var back = await http.GetAsync(second.Headers.Location, Cancel);
        Assert.Equal(HttpStatusCode.Redirect, back.StatusCode);
        var (status, body) = await OAuthFlows.RedeemAsync(http, OAuthFlows.CodeFrom(back.Headers.Location!), verifier);
        Assert.True(status == HttpStatusCode.OK, $"code redemption failed: {status} {body}");
        return body;
    }

    /// <summary>The amr array of a JWT.</summary>
    public static string[] Amr(string jwt) =>
        [.. OAuthFlows.Payload(jwt).GetProperty("amr").EnumerateArray().Select(value => value.GetString()!)];

    /// <summary>The reset link in the newest mail to <paramref name="address"/> in the host's pickup directory.</summary>
    public static async Task<(string Path, Uri Link)> ResetMailAsync(SecurityHost host, string address)
    {
        foreach (var file in Directory.GetFiles(host.MailDirectory).OrderByDescending(File.GetLastWriteTimeUtc))
        {
            var text = await File.ReadAllTextAsync(file, Cancel);
            if (text.Contains("To: " + address, StringComparison.OrdinalIgnoreCase) && ResetLink().Match(text) is { Success: true } link)
            {
                return (file, new Uri(link.Value));
            }
        }

        throw new InvalidOperationException($"No mail to {address} in {host.MailDirectory}.");
    }

    /// <summary>The security notices mailed to <paramref name="address"/> so far (their text).</summary>
    public static async Task<List<string>> NoticesAsync(SecurityHost host, string address)
    {
        var notices = new List<string>();
        foreach (var file in Directory.Exists(host.MailDirectory) ? Directory.GetFiles(host.MailDirectory) : [])
        {
            var text = await File.ReadAllTextAsync(file, Cancel);
            if (text.Contains("To: " + address, StringComparison.OrdinalIgnoreCase) && text.Contains("Subject: Security notice", StringComparison.Ordinal))
            {
                notices.Add(text);
            }
        }

        return notices;
    }

    public static int MailCount(SecurityHost host) => Directory.Exists(host.MailDirectory) ? Directory.GetFiles(host.MailDirectory).Length : 0;

    [GeneratedRegex("id=\"shared-key\">(?<key>[a-z2-7 ]+)<")]
    private static partial Regex SharedKey();

    [GeneratedRegex("<li><code>(?<code>[A-Z0-9-]+)</code></li>")]
    private static partial Regex RecoveryCode();

    [GeneratedRegex(@"https?://\S+/account/reset-password\?\S+")]
    private static partial Regex ResetLink();
}
