using System.Net;
using System.Text.RegularExpressions;
using CrmSecurity.Security.Tests.Support;
using static CrmSecurity.Security.Tests.Identity.AccountBrowser;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>
/// OWASP ASVS 4.0.3 V3.3.4: a person sees where they are signed in and signs out any or all of those sessions. The one
/// who left a session open on a shared or stolen laptop ends it from anywhere else; the session ends server-side, for
/// every copy of its cookie. Nobody ends (or even names) another person's session.
/// </summary>
public sealed partial class SessionListTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    [Fact]
    public async Task Erin_sees_both_her_sessions_and_signs_out_the_one_on_the_other_laptop()
    {
        using var laptop = await BrowserAsync("erin", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0");
        using var desk = await BrowserAsync("erin", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36");

        var page = await desk.GetStringAsync(new Uri("account", UriKind.Relative), Personas.Cancel);
        var others = Handles(page);
        Assert.Contains("This browser", page, StringComparison.Ordinal);
        Assert.Contains("Firefox", page, StringComparison.Ordinal);
        Assert.Single(others);

        using var end = await PostFormAsync(desk, "/account", "/account?handler=EndSession", new Dictionary<string, string> { ["session"] = others[0] });

        Assert.Equal(HttpStatusCode.OK, end.StatusCode);
        Assert.Contains("That session is signed out.", await end.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);
        Assert.True(await SignedOutAsync(laptop), "the laptop's cookie still opens the account page");
        Assert.False(await SignedOutAsync(desk), "the session that ended the other one was signed out too");
        Assert.Empty(Handles(await desk.GetStringAsync(new Uri("account", UriKind.Relative), Personas.Cancel)));
    }

    [Fact]
    public async Task Sign_out_everywhere_else_ends_every_other_session_and_keeps_this_one()
    {
        using var first = await BrowserAsync("grace");
        using var second = await BrowserAsync("grace");
        using var here = await BrowserAsync("grace");

        using var end = await PostFormAsync(here, "/account", "/account?handler=EndOtherSessions", new Dictionary<string, string>());

        Assert.Contains("2 other sessions are signed out.", await end.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);
        Assert.True(await SignedOutAsync(first));
        Assert.True(await SignedOutAsync(second));
        Assert.False(await SignedOutAsync(here));
    }

    [Fact]
    public async Task Frank_cannot_sign_out_a_session_of_ed_even_knowing_its_name()
    {
        using var edLaptop = await BrowserAsync("ed");
        using var edDesk = await BrowserAsync("ed");
        var edsOther = Assert.Single(Handles(await edDesk.GetStringAsync(new Uri("account", UriKind.Relative), Personas.Cancel)));
        using var frank = await BrowserAsync("frank");

        // The worst case: frank learned the name the page gives ed's laptop session and posts it with his own session.
        using var attempt = await PostFormAsync(frank, "/account", "/account?handler=EndSession", new Dictionary<string, string> { ["session"] = edsOther });

        Assert.Contains("There is no such session of yours", await attempt.Content.ReadAsStringAsync(Personas.Cancel), StringComparison.Ordinal);
        Assert.False(await SignedOutAsync(edLaptop), "frank ended ed's session");
        Assert.False(await SignedOutAsync(edDesk));
    }

    [Fact]
    public async Task The_page_never_shows_a_session_id_only_a_name_for_it()
    {
        using var browser = await BrowserAsync("alice");
        using var other = await BrowserAsync("alice");
        var ids = (await host.QueryAsync("SELECT SessionId FROM identity_sessions WHERE UserId = (SELECT Id FROM AspNetUsers WHERE UserName = 'alice')"))
            .Select(row => (string)row["SessionId"]!).ToList();

        var page = await browser.GetStringAsync(new Uri("account", UriKind.Relative), Personas.Cancel);

        Assert.True(ids.Count >= 2, $"sessions recorded: {ids.Count}");
        Assert.All(ids, id => Assert.DoesNotContain(id, page, StringComparison.Ordinal));
    }

    private async Task<HttpClient> BrowserAsync(string user, string? userAgent = null)
    {
        var http = host.CreateClient();
        if (userAgent is not null)
        {
            http.DefaultRequestHeaders.UserAgent.ParseAdd(userAgent);
        }

        using var login = await SignInAsync(http, user);
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        return http;
    }

    /// <summary>Whether the browser's session no longer opens the account page (it is sent to sign in).</summary>
    private static async Task<bool> SignedOutAsync(HttpClient browser)
    {
        using var page = await browser.GetAsync(new Uri("account", UriKind.Relative), Personas.Cancel);
        return page.StatusCode == HttpStatusCode.Redirect && page.Headers.Location!.OriginalString.Contains("/account/login", StringComparison.OrdinalIgnoreCase);
    }

    private static List<string> Handles(string page) => [.. SessionHandle().Matches(page).Select(match => match.Groups["handle"].Value)];

    [GeneratedRegex("name=\"session\" value=\"(?<handle>[0-9a-f]{16})\"")]
    private static partial Regex SessionHandle();
}
