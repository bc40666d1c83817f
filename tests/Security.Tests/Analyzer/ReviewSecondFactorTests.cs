using System.Net;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Analyzer.AnalyzerCalls;
using static CrmSecurity.Security.Tests.Identity.AccountBrowser;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>The reviewer host with privileged interfaces behind two-step verification, as Production has them by default.</summary>
public sealed class SecondFactorReviewerHost : ReviewerHost
{
    protected override Dictionary<string, string?> MoreSettings(Dictionary<string, string?> settings)
    {
        settings["Identity:AdminsRequireSecondFactor"] = "true";
        return settings;
    }
}

/// <summary>
/// OWASP ASVS 4.0.3 V4.3.1, for the auditors' side: reviewing findings releases real identities and decides what happens
/// to a colleague, so someone holding the password of a person who reads findings (dave, a security admin) but not the
/// authenticator gets neither the review pages nor a review token the findings API accepts. The auditor who signs in with
/// the second step gets both; a SIEM client reading the feed with its own token (no person) keeps working. (carol enrols
/// an authenticator in one test, so the password-only attacks are made with dave's password: test order cannot matter.)
/// </summary>
public sealed class ReviewSecondFactorTests(SecondFactorReviewerHost host) : IClassFixture<SecondFactorReviewerHost>
{
    [Fact]
    public async Task A_password_only_sign_in_opens_no_review_page_and_is_sent_to_turn_on_two_step()
    {
        using var http = await host.BrowserAsync("dave");

        using var review = await http.GetAsync(new Uri("review", UriKind.Relative), Personas.Cancel);

        Assert.Equal(HttpStatusCode.Redirect, review.StatusCode);
        Assert.Equal("/account/two-factor?required=review", review.Headers.Location!.OriginalString);
        var page = await http.GetStringAsync(review.Headers.Location, Personas.Cancel);
        Assert.Contains("The review pages need a sign-in with two-step verification.", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_password_only_review_token_reads_no_findings_and_the_refusal_says_why()
    {
        var dave = await TryUserTokenAsync(host, "dave", "openid findings:read", ReviewerHost.Client, ReviewerHost.Secret, ReviewerHost.Redirect);

        var (status, problem) = await GetAsync(host, dave!, "analyzer/findings");

        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("two-step verification", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_the_second_step_the_auditor_reaches_the_review_pages()
    {
        Enrolment enrolment;
        using (var enrolling = host.CreateClient())
        {
            enrolment = await EnrolAuthenticatorAsync(enrolling, "carol");
        }

        using var http = host.CreateClient();
        var login = await SignInAsync(http, "carol", returnUrl: "/review");
        Assert.StartsWith("/account/login-2fa", login.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await SecondFactorAsync(http, Totp.Code(enrolment.Key, DateTimeOffset.UtcNow), returnUrl: "/review")).StatusCode);

        using var review = await http.GetAsync(new Uri("review", UriKind.Relative), Personas.Cancel);
        Assert.Equal(HttpStatusCode.OK, review.StatusCode);
    }

    [Fact]
    public async Task A_siem_client_reading_the_feed_with_its_own_token_needs_no_second_step()
    {
        await GiveClientReadOnFindingsAsync(host, "demo-audit");
        var siem = await Personas.ClientTokenAsync(host, "demo-audit", "findings:read");

        var (status, _) = await GetAsync(host, siem, "analyzer/findings");

        Assert.Equal(HttpStatusCode.OK, status);
    }
}
