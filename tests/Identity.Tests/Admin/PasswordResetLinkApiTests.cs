using System.Net;
using System.Text.RegularExpressions;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// "Send password-reset link" through the admin API over real HTTP (issue 13): the link goes only to the user's mailbox,
/// works once, and its token appears neither in the reply nor in the audit trail; a business-unit admin sends none
/// outside his unit.
/// </summary>
public sealed class PasswordResetLinkApiTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private string MailDirectory => Path.Combine(host.Directory, "mail");

    [Fact]
    public async Task The_link_goes_to_the_users_mailbox_only_works_once_and_its_token_is_never_in_the_reply_or_the_audit_trail()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var alice = await AdminApiTests.UserIdAsync(admin, "alice");
        var before = Mails();

        var sent = await admin.SendAsync(HttpMethod.Post, $"admin/api/users/{alice}/password-reset-link", null);

        Assert.Equal(HttpStatusCode.OK, sent.Status);
        Assert.Equal("alice@demo.example", sent.Json.GetProperty("sent_to").GetString());
        Assert.True(sent.Json.GetProperty("expires_at").GetDateTimeOffset() > DateTimeOffset.UtcNow);
        var mail = Assert.Single(Mails().Except(before));
        var text = await File.ReadAllTextAsync(mail, Cancel);
        Assert.Contains("To: alice@demo.example", text, StringComparison.Ordinal);
        var token = Uri.UnescapeDataString(Regex.Match(text, @"[?&]token=([^&\s]+)").Groups[1].Value);
        Assert.NotEmpty(token);
        Assert.DoesNotContain(token, sent.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("token=", sent.Text, StringComparison.Ordinal);

        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.Action == "user.password_reset_link" && e.TargetId == alice, Cancel));
        var audit = string.Join('\n', await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Select(e => (e.Before ?? "") + (e.After ?? "")).ToListAsync(Cancel)));
        Assert.Contains("\"sent_to\":\"alice@demo.example\"", entry.After!, StringComparison.Ordinal);
        Assert.DoesNotContain(token, audit, StringComparison.Ordinal);
        Assert.DoesNotContain(Uri.EscapeDataString(token), audit, StringComparison.Ordinal);

        // One-time: the token sets a password once; the changed security stamp refuses it after that.
        await using var scope = host.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<CrmUser>>();
        var user = (await users.FindByIdAsync(alice))!;
        Assert.True((await users.ResetPasswordAsync(user, token, "Alice-Chose-A-New-One-43")).Succeeded);
        Assert.False((await users.ResetPasswordAsync((await users.FindByIdAsync(alice))!, token, "Alice-Tries-It-Again-44")).Succeeded);
    }

    [Fact]
    public async Task A_business_unit_admin_cannot_send_a_reset_link_to_a_user_outside_his_unit()
    {
        var (westAdmin, _) = await AdminApi.ApplicationUserAsync(host, "west-resets", "sales-west", "west_user_admin");
        using var _ = westAdmin;
        using var secops = await AdminApi.SecOpsAsync(host);
        var ed = await AdminApiTests.UserIdAsync(secops, "ed");
        var bob = await AdminApiTests.UserIdAsync(secops, "bob");
        var before = Mails();

        var outside = await westAdmin.SendAsync(HttpMethod.Post, $"admin/api/users/{ed}/password-reset-link", null);
        var inside = await westAdmin.SendAsync(HttpMethod.Post, $"admin/api/users/{bob}/password-reset-link", null);

        Assert.Equal(HttpStatusCode.Forbidden, outside.Status);
        Assert.Equal(HttpStatusCode.OK, inside.Status);
        var mail = Assert.Single(Mails().Except(before));
        Assert.Contains("To: bob@demo.example", await File.ReadAllTextAsync(mail, Cancel), StringComparison.Ordinal);
        Assert.False(await host.WithStoreAsync(store => store.AuditTrail.AnyAsync(e => e.Action == "user.password_reset_link" && e.TargetId == ed, Cancel)));
    }

    [Fact]
    public async Task No_link_for_oneself_or_for_an_unknown_user()
    {
        using var secops = await AdminApi.SecOpsAsync(host);
        var self = await AdminApiTests.UserIdAsync(secops, AdminApiTests.DemoApplicationUser);

        var toSelf = await secops.SendAsync(HttpMethod.Post, $"admin/api/users/{self}/password-reset-link", null);
        var missing = await secops.SendAsync(HttpMethod.Post, "admin/api/users/no-such-user/password-reset-link", null);

        Assert.Equal(HttpStatusCode.Forbidden, toSelf.Status);
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
    }

    private HashSet<string> Mails() => Directory.Exists(MailDirectory) ? [.. Directory.GetFiles(MailDirectory, "*.eml")] : [];
}
