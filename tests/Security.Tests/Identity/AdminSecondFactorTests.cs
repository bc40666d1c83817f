using System.Net;
using CrmSecurity.Security.Tests.Authorization;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Identity.AccountBrowser;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>The admin console host with administrative interfaces behind two-step verification, as Production has them by default.</summary>
public sealed class SecondFactorAdminHost : AdminConsoleHost
{
    protected override IReadOnlyDictionary<string, string?> Settings =>
        new Dictionary<string, string?>(base.Settings) { ["Identity:AdminsRequireSecondFactor"] = "true" };
}

/// <summary>
/// OWASP ASVS 4.0.3 V4.3.1: administrative interfaces use multi-factor authentication. Someone who has an admin's
/// password (phished, reused, guessed) but not the authenticator gets neither the admin pages nor an admin token that
/// the admin or incident-response API accepts; the admin who signs in with the second step gets both, and a client's
/// own application user (no person) keeps working.
/// </summary>
public sealed class AdminSecondFactorTests(SecondFactorAdminHost host) : IClassFixture<SecondFactorAdminHost>
{
    [Fact]
    public async Task A_password_only_sign_in_opens_no_admin_page_and_is_sent_to_turn_on_two_step()
    {
        using var http = host.CreateClient();
        Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(http, "wade")).StatusCode);

        using var admin = await http.GetAsync(new Uri("admin/users", UriKind.Relative), Personas.Cancel);

        Assert.Equal(HttpStatusCode.Redirect, admin.StatusCode);
        Assert.Equal("/account/two-factor?required=admin", admin.Headers.Location!.OriginalString);
        var page = await http.GetStringAsync(admin.Headers.Location, Personas.Cancel);
        Assert.Contains("The admin pages need a sign-in with two-step verification.", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_password_only_admin_token_makes_no_admin_or_incident_call_and_each_refusal_says_why()
    {
        var token = await AdminConsole.AdminTokenAsync(host, "wade");

        var list = await AdminConsole.GetAsync(host, token, "admin/api/users");
        var disable = await AdminConsole.PostAsync(host, token, $"identity/admin/users/{DemoIds.Of("alice")}/disable", new { reason = "phished password" });

        Assert.Equal(HttpStatusCode.Forbidden, list.Status);
        Assert.Contains("two-step verification", list.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, disable.Status);
        Assert.Contains("two-step verification", disable.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_the_second_step_the_admin_reaches_the_pages_and_the_api()
    {
        Enrolment enrolment;
        using (var enrolling = host.CreateClient())
        {
            enrolment = await EnrolAuthenticatorAsync(enrolling, "dave");
        }

        using var http = host.CreateClient();
        var login = await SignInAsync(http, "dave");
        Assert.StartsWith("/account/login-2fa", login.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await SecondFactorAsync(http, Totp.Code(enrolment.Key, DateTimeOffset.UtcNow))).StatusCode);

        using var page = await http.GetAsync(new Uri("admin/users", UriKind.Relative), Personas.Cancel);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);

        // The admin console's code flow on the same session: the token records the second step (amr mfa).
        var (verifier, challenge) = OAuthFlows.Pkce();
        var authorize = OAuthFlows.AuthorizeParameters(challenge, AdminConsoleHost.ConsoleClient, AdminConsoleHost.ConsoleRedirect, "openid identity.admin");
        using var redirect = await http.GetAsync(new Uri(OAuthFlows.AuthorizeUrl(authorize), UriKind.Relative), Personas.Cancel);
        Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
        var (status, tokens) = await OAuthFlows.RedeemAsync(http, OAuthFlows.CodeFrom(redirect.Headers.Location!), verifier,
            AdminConsoleHost.ConsoleRedirect, AdminConsoleHost.ConsoleClient, AdminConsoleHost.ConsoleSecret);
        Assert.Equal(HttpStatusCode.OK, status);
        var token = tokens.GetProperty("access_token").GetString()!;
        Assert.Contains("mfa", Amr(token));

        Assert.Equal(HttpStatusCode.OK, (await AdminConsole.GetAsync(host, token, "admin/api/users")).Status);
    }

    [Fact]
    public async Task A_clients_own_application_user_needs_no_second_step()
    {
        var token = await AdminConsole.SecOpsTokenAsync(host);

        Assert.Equal(HttpStatusCode.OK, (await AdminConsole.GetAsync(host, token, "admin/api/users")).Status);
    }
}
