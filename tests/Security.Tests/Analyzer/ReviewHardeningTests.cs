using System.Net;
using System.Text;
using CrmSecurity.Security.Tests.Support;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>
/// What the red team did not try against the review workflow (OWASP ASVS 4.0.3 V4.2.2 CSRF, V13.1.3 bounded input,
/// V13.2.3 no cookie-authenticated API): request sizes, cross-site requests with the sign-in cookie, forms without the
/// anti-forgery token.
/// </summary>
public sealed class ReviewHardeningTests(ReviewerHost host) : IClassFixture<ReviewerHost>
{
    [Fact]
    public async Task A_review_api_body_over_256_kib_is_refused_with_413()
    {
        var carol = await host.ReviewTokenAsync("carol");
        using var http = host.CreateClient(carol);

        using var response = await http.PostAsync(new Uri("analyzer/review/findings/f-any/notes", UriKind.Relative),
            new StringContent("{\"text\":\"" + new string('x', 300 * 1024) + "\"}", Encoding.UTF8, "application/json"), Personas.Cancel);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task A_review_page_form_over_256_kib_is_refused_and_nothing_is_stored()
    {
        var id = await host.FindingAboutAsync(await Personas.UserIdAsync(host, "erin"), "erin-size");
        using var browser = await host.BrowserAsync("carol");
        var page = await browser.GetStringAsync(new Uri($"review/findings/{id}", UriKind.Relative), Personas.Cancel);

        // A valid note padded with a field nobody reads: without a limit the note would be added (302).
        using var response = await browser.PostAsync(new Uri($"review/findings/{id}?handler=Note", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Note"] = "short note",
            ["Padding"] = new string('x', 300 * 1024),
            ["__RequestVerificationToken"] = CrmSecurity.Tests.Support.OAuthFlows.AntiForgeryToken(page),
        }), Personas.Cancel);

        // The anti-forgery check reads the form first and fails on the cut body (400), or the limit answers itself (413).
        Assert.True(response.StatusCode is HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.BadRequest, $"{(int)response.StatusCode}");
        Assert.Empty(await host.QueryAsync("SELECT id FROM analyzer_review_notes WHERE finding_id = $f", ("$f", id)));
    }

    [Fact]
    public async Task The_sign_in_cookie_does_not_authenticate_the_review_api_so_a_cross_site_post_does_nothing()
    {
        var id = await host.FindingAboutAsync(await Personas.UserIdAsync(host, "erin"), "erin-csrf");
        using var browser = await host.BrowserAsync("carol");

        using var response = await browser.PostAsync(new Uri($"analyzer/review/findings/{id}/status", UriKind.Relative),
            new StringContent("{\"status\":\"dismissed\",\"disposition\":\"false_positive\"}", Encoding.UTF8, "application/json"), Personas.Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("new", await host.StatusOfAsync(id));
    }

    [Fact]
    public async Task A_review_page_post_without_the_anti_forgery_token_is_refused()
    {
        var id = await host.FindingAboutAsync(await Personas.UserIdAsync(host, "erin"), "erin-form");
        using var browser = await host.BrowserAsync("carol");

        using var response = await browser.PostAsync(new Uri($"review/findings/{id}?handler=Close", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Status"] = "dismissed",
            ["Disposition"] = "false_positive",
        }), Personas.Cancel);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("new", await host.StatusOfAsync(id));
    }
}
