using System.Net;
using System.Text.RegularExpressions;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Authorization.AdminConsole;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// Red-team finding 11: admin-API user creation skipped the validators. One-character passwords were accepted, a duplicate
/// e-mail address then broke its owner's sign-in and password reset with a 500, application users got passwords and signed
/// in interactively, and application users were bound to clients that did not exist. Now creation goes through Identity's
/// user and password validators, application users have no password on any path, and every refusal names the field.
/// </summary>
public sealed partial class UserCreationTests(AdminConsoleHost host) : IClassFixture<AdminConsoleHost>
{
    [Theory]
    [InlineData("x", "one character")]
    [InlineData("password1234", "on the deny list")]
    [InlineData("short-pw", "shorter than the minimum of 10")]
    public async Task A_weak_password_is_refused_naming_the_password(string password, string why)
    {
        var dave = await host.AdminTokenOf("dave");

        var reply = await PostAsync(host, dave, "admin/api/users",
            new { user_name = "weak-" + Guid.NewGuid().ToString("N")[..8], business_unit = "sales-west", email = $"{Guid.NewGuid():N}@demo.example", password });

        Assert.True(reply.Status == HttpStatusCode.BadRequest, $"{why}: {reply}");
        Assert.NotEmpty(reply.Errors("password"));
    }

    [Fact]
    public async Task A_duplicate_email_is_refused_and_its_owner_still_signs_in_and_resets_by_email()
    {
        var dave = await host.AdminTokenOf("dave");

        var reply = await PostAsync(host, dave, "admin/api/users",
            new { user_name = "mallory", business_unit = "sales-west", email = "DAVE@demo.example", password = "Mallory-Takes-Over-42" });
        using var browser = host.CreateClient();
        var signIn = await OAuthFlows.SignInAsync(browser, "dave@demo.example", Personas.Passwords["dave"], "openid");
        var reset = await RequestResetAsync("dave@demo.example");

        Assert.Equal(HttpStatusCode.Conflict, reply.Status);
        Assert.NotEmpty(reply.Errors("email"));
        Assert.True(signIn.TryGetProperty("access_token", out _));
        Assert.Equal(HttpStatusCode.OK, reset.Status);
        Assert.NotNull(await MailFor("dave@demo.example", reset.Since));
    }

    [Fact]
    public async Task A_duplicate_or_invalid_user_name_is_refused_naming_the_user_name()
    {
        var dave = await host.AdminTokenOf("dave");

        var duplicate = await PostAsync(host, dave, "admin/api/users", new { user_name = "ALICE", business_unit = "sales-west", email = "alice2@demo.example" });
        var invalid = await PostAsync(host, dave, "admin/api/users", new { user_name = "a lice<script>", business_unit = "sales-west", email = "alice3@demo.example" });

        Assert.Equal(HttpStatusCode.Conflict, duplicate.Status);
        Assert.NotEmpty(duplicate.Errors("user_name"));
        Assert.Equal(HttpStatusCode.BadRequest, invalid.Status);
        Assert.NotEmpty(invalid.Errors("user_name"));
    }

    [Fact]
    public async Task An_application_user_cannot_be_given_a_password()
    {
        var dave = await host.AdminTokenOf("dave");

        var reply = await PostAsync(host, dave, "admin/api/users",
            new { user_name = "robot-with-password", business_unit = "security", application_client_id = AdminConsoleHost.RobotClient, password = "Robots-Sign-In-Too-42" });

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.NotEmpty(reply.Errors("password"));
    }

    [Fact]
    public async Task An_application_user_must_name_an_existing_client_that_has_no_application_user_yet()
    {
        var dave = await host.AdminTokenOf("dave");

        var missing = await PostAsync(host, dave, "admin/api/users", new { user_name = "ghost-app", business_unit = "security", application_client_id = "no-such-client" });
        var second = await PostAsync(host, dave, "admin/api/users", new { user_name = "secops-app-2", business_unit = "security", application_client_id = "demo-secops" });

        Assert.Equal(HttpStatusCode.BadRequest, missing.Status);
        Assert.NotEmpty(missing.Errors("application_client_id"));
        Assert.Equal(HttpStatusCode.Conflict, second.Status);
        Assert.NotEmpty(second.Errors("application_client_id"));
    }

    [Fact]
    public async Task An_application_user_cannot_get_a_password_through_a_reset_link_or_sign_in()
    {
        var dave = await host.AdminTokenOf("dave");
        var created = await PostAsync(host, dave, "admin/api/users",
            new { user_name = "audit-app", business_unit = "compliance", email = "audit-app@demo.example", application_client_id = "demo-audit" });
        Assert.True(created.Status == HttpStatusCode.Created, created.ToString());

        // Whoever reads the application user's mailbox asks for a reset link: none is sent (the page answers as for any
        // address, so it tells nothing either).
        var reset = await RequestResetAsync("audit-app@demo.example");
        Assert.Equal(HttpStatusCode.OK, reset.Status);
        Assert.Null(await MailFor("audit-app@demo.example", reset.Since));

        // A reset posted for the application user (a token got some other way, here a guess) changes nothing.
        using var browser = host.CreateClient();
        var page = await browser.GetStringAsync(new Uri("account/reset-password", UriKind.Relative), Personas.Cancel);
        var chosen = await browser.PostAsync(new Uri("account/reset-password", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["User"] = created.Json.GetProperty("id").GetString()!,
            ["Token"] = "CfDJ8-guessed-token",
            ["NewPassword"] = "Robots-Sign-In-Too-42",
            ["__RequestVerificationToken"] = OAuthFlows.AntiForgeryToken(page),
        }), Personas.Cancel);
        var answer = await chosen.Content.ReadAsStringAsync(Personas.Cancel);
        using var again = host.CreateClient();
        var login = await OAuthFlows.SubmitLoginAsync(again, "/account", "audit-app", "Robots-Sign-In-Too-42");

        Assert.DoesNotContain("Your password was changed", answer, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode); // the form again: no session
        Assert.Empty((await host.QueryAsync("SELECT PasswordHash FROM AspNetUsers WHERE UserName = 'audit-app' AND PasswordHash IS NOT NULL")));
    }

    private async Task<(HttpStatusCode Status, DateTime Since)> RequestResetAsync(string email)
    {
        var since = DateTime.UtcNow.AddSeconds(-1);
        using var browser = host.CreateClient();
        var form = await browser.GetStringAsync(new Uri("account/forgot-password", UriKind.Relative), Personas.Cancel);
        var sent = await browser.PostAsync(new Uri("account/forgot-password", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = email,
            ["__RequestVerificationToken"] = OAuthFlows.AntiForgeryToken(form),
        }), Personas.Cancel);
        return (sent.StatusCode, since);
    }

    /// <summary>The reset link of the newest mail to <paramref name="address"/> written since <paramref name="since"/>, or null.</summary>
    private async Task<Uri?> MailFor(string address, DateTime since)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            if (Directory.Exists(host.MailDirectory))
            {
                foreach (var file in new DirectoryInfo(host.MailDirectory).GetFiles("*.eml").Where(f => f.LastWriteTimeUtc >= since).OrderByDescending(f => f.LastWriteTimeUtc))
                {
                    var text = await File.ReadAllTextAsync(file.FullName, Personas.Cancel);
                    if (text.Contains($"To: {address}", StringComparison.OrdinalIgnoreCase) && ResetLink().Match(text) is { Success: true } match)
                    {
                        return new Uri(match.Value);
                    }
                }
            }

            await Task.Delay(100, Personas.Cancel);
        }

        return null;
    }

    [GeneratedRegex(@"https?://\S+/account/reset-password\?\S+")]
    private static partial Regex ResetLink();
}
