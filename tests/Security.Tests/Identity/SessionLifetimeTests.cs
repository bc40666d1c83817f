using System.Net;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Identity.AccountBrowser;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>Sessions with short lifetimes, so that expiry can be watched in seconds.</summary>
public sealed class ShortSessionHost : SecurityHost
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Sessions:IdleTimeout"] = "00:00:03",
        ["Identity:Sessions:AbsoluteTimeout"] = "00:00:06",
    };
}

/// <summary>
/// Issue 11, what the attack did not try (OWASP ASVS 4.0.3 V3.3.2; OpenID Connect Core §3.1.2.1): session lifetimes. Every
/// request renewed the sign-in cookie and its issue time, so a session used now and then never ended, and a client's
/// <c>max_age</c> (time since the user last authenticated) was measured from the last request instead. Sessions now end
/// after an idle period and after an absolute lifetime, and <c>max_age</c> counts from <c>auth_time</c>. Signing out
/// only cleared the browser's cookie: a copy taken before stayed signed in; now the session itself ends (V3.3.1).
/// </summary>
public sealed class SessionLifetimeTests(ShortSessionHost host) : IClassFixture<ShortSessionHost>
{
    [Fact]
    public async Task Max_age_counts_from_the_sign_in_not_from_the_last_request()
    {
        using var http = host.CreateClient();
        await SignInAsync(http, "carol");
        var signedInAt = DateTimeOffset.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(1.2), Personas.Cancel);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)).StatusCode);
        await Task.Delay(TimeSpan.FromSeconds(1.2), Personas.Cancel);

        var parameters = OAuthFlows.AuthorizeParameters(OAuthFlows.Pkce().Challenge, scope: "openid");
        parameters["max_age"] = "2";
        var answer = await http.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(parameters), UriKind.Relative), Personas.Cancel);

        Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
        Assert.Contains("/account/login", answer.Headers.Location!.OriginalString, StringComparison.Ordinal);

        // Signing in again satisfies it, and the ID token says when (OpenID Connect Core §2: auth_time with max_age).
        var (verifier, challenge) = OAuthFlows.Pkce();
        var fresh = OAuthFlows.AuthorizeParameters(challenge, scope: "openid");
        fresh["max_age"] = "2";
        var redirect = await OAuthFlows.AuthorizeAsync(http, fresh, "carol", Personas.Passwords["carol"]);
        var (status, tokens) = await OAuthFlows.RedeemAsync(http, OAuthFlows.CodeFrom(redirect), verifier);
        Assert.Equal(HttpStatusCode.OK, status);
        var authTime = DateTimeOffset.FromUnixTimeSeconds(OAuthFlows.Payload(tokens.GetProperty("id_token").GetString()!).GetProperty("auth_time").GetInt64());
        Assert.True(authTime > signedInAt.AddSeconds(1), $"auth_time {authTime:O} is the first sign-in at {signedInAt:O}");
    }

    [Fact]
    public async Task A_session_left_idle_past_the_idle_timeout_is_over()
    {
        using var http = host.CreateClient();
        await SignInAsync(http, "frank");
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)).StatusCode);

        await Task.Delay(TimeSpan.FromSeconds(4), Personas.Cancel);

        Assert.Equal(HttpStatusCode.Redirect, (await http.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)).StatusCode);
    }

    [Fact]
    public async Task A_session_in_constant_use_still_ends_at_the_absolute_timeout()
    {
        using var http = host.CreateClient();
        await SignInAsync(http, "wade");
        var started = DateTimeOffset.UtcNow;
        var statuses = new List<(double Seconds, HttpStatusCode Status)>();
        while (DateTimeOffset.UtcNow - started < TimeSpan.FromSeconds(8))
        {
            statuses.Add(((DateTimeOffset.UtcNow - started).TotalSeconds, (await http.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)).StatusCode));
            await Task.Delay(TimeSpan.FromSeconds(1), Personas.Cancel);
        }

        Assert.All(statuses.Where(s => s.Seconds < 4.5), s => Assert.Equal(HttpStatusCode.OK, s.Status));
        Assert.All(statuses.Where(s => s.Seconds > 6.5), s => Assert.Equal(HttpStatusCode.Redirect, s.Status));
    }

    [Fact]
    public async Task A_copy_of_the_session_cookie_taken_before_sign_out_is_refused_after_it()
    {
        var jar = new CookieContainer();
        using var owner = host.CreateClient(cookies: jar);
        await SignInAsync(owner, "ed");
        var copy = new CookieContainer();
        foreach (var cookie in jar.GetAllCookies().Cast<Cookie>())
        {
            copy.Add(new Cookie(cookie.Name, cookie.Value, cookie.Path, cookie.Domain));
        }

        using var thief = host.CreateClient(cookies: copy);
        Assert.Equal(HttpStatusCode.OK, (await thief.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel)).StatusCode);

        var signedOut = await PostFormAsync(owner, "connect/logout", "connect/logout", new Dictionary<string, string>());
        Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);

        var afterwards = await thief.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel);
        Assert.Equal(HttpStatusCode.Redirect, afterwards.StatusCode);
        Assert.Contains("/account/login", afterwards.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }
}
