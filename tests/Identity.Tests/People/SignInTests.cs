using System.Net;
using System.Text.RegularExpressions;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.People;

/// <summary>A host whose password hasher counts verifications, to show every failure path does the same hashing work.</summary>
public sealed class CountingHasherHost : IdentityHost
{
    internal CountingHasher Hasher { get; } = new();

    protected override void ConfigureServices(IServiceCollection services) =>
        services.AddSingleton<IPasswordHasher<CrmUser>>(Hasher);
}

internal sealed class CountingHasher : IPasswordHasher<CrmUser>
{
    private readonly PasswordHasher<CrmUser> _inner = new();
    private int _verifications;

    public int Verifications => Volatile.Read(ref _verifications);

    public string HashPassword(CrmUser user, string password) => _inner.HashPassword(user, password);

    public PasswordVerificationResult VerifyHashedPassword(CrmUser user, string hashedPassword, string providedPassword)
    {
        Interlocked.Increment(ref _verifications);
        return _inner.VerifyHashedPassword(user, hashedPassword, providedPassword);
    }
}

public sealed partial class SignInTests(CountingHasherHost host) : IClassFixture<CountingHasherHost>
{
    [Fact]
    public async Task An_unknown_user_a_wrong_password_and_a_locked_account_get_the_same_answer_after_the_same_hashing_work()
    {
        var unknown = await FailedAttemptAsync("nobody-by-this-name", "Whatever-Password-1");
        var wrong = await FailedAttemptAsync("bob", "not-bobs-password-1");

        Assert.Equal(wrong.Status, unknown.Status);
        Assert.Equal(wrong.Message, unknown.Message);
        Assert.Equal(1, unknown.HashVerifications);
        Assert.Equal(1, wrong.HashVerifications);
    }

    [Fact]
    public async Task Five_failures_lock_the_account_and_the_right_password_is_then_refused_with_the_same_answer()
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            await FailedAttemptAsync("carol", "not-carols-password");
        }

        var user = await host.WithStoreAsync(store => store.Users.AsNoTracking().SingleAsync(u => u.UserName == "carol", Cancel));
        Assert.NotNull(user.LockoutEnd);
        Assert.True(user.LockoutEnd > DateTimeOffset.UtcNow.AddMinutes(4)); // 5 minutes by default

        var locked = await FailedAttemptAsync("carol", "Carol-Reads-The-Logs-42");
        var unknown = await FailedAttemptAsync("nobody-else", "Carol-Reads-The-Logs-42");
        Assert.Equal(unknown.Message, locked.Message);
        Assert.Equal(1, locked.HashVerifications); // a dummy hash, as for an unknown user

        await host.FlushEventsAsync();
        var events = await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking().Where(e => e.UserId == user.Id).ToListAsync(Cancel));
        Assert.Single(events, e => e.Action == "lockout");
        Assert.Contains(events, e => e.Action == "login_failed" && e.Details == "locked_out");
    }

    [Fact]
    public async Task A_common_password_and_a_short_password_are_refused_and_a_long_unusual_one_is_accepted()
    {
        await using var scope = host.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<CrmUser>>();

        var common = await users.CreateAsync(new CrmUser { UserName = "nadia", Email = "nadia@demo.example" }, "qwertyuiop");
        var shortOne = await users.CreateAsync(new CrmUser { UserName = "nadia", Email = "nadia@demo.example" }, "Xk3#pq9");
        var good = await users.CreateAsync(new CrmUser { UserName = "nadia", Email = "nadia@demo.example" }, "violet-harbour-tram-1987");

        Assert.Contains(common.Errors, e => e.Code == "PasswordCommon");
        Assert.Contains(shortOne.Errors, e => e.Code == "PasswordTooShort");
        Assert.True(good.Succeeded, string.Join(", ", good.Errors.Select(e => e.Code)));
    }

    [Fact]
    public async Task Totp_enrolment_with_the_QR_key_then_sign_in_needs_the_code_and_a_recovery_code_works_once()
    {
        var cookies = new CookieContainer();
        using var http = host.CreateClient(cookies);
        Assert.Equal(HttpStatusCode.Redirect, (await SubmitLoginAsync(http, "/account", "dave", "Dave-Guards-The-Keys-42")).StatusCode);

        var page = await http.GetStringAsync(new Uri("account/two-factor", UriKind.Relative), Cancel);
        Assert.Contains("data:image/svg+xml;base64,", page, StringComparison.Ordinal);
        var key = SharedKey().Match(page).Groups["key"].Value;
        var enable = await http.PostAsync(new Uri("account/two-factor?handler=Enable", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Code"] = Totp.Code(key, DateTimeOffset.UtcNow),
            ["Password"] = "Dave-Guards-The-Keys-42", // a change of how the account signs in asks for the password again
            ["__RequestVerificationToken"] = AntiForgeryToken(page),
        }), Cancel);
        var enabled = await enable.Content.ReadAsStringAsync(Cancel);
        Assert.Equal(HttpStatusCode.OK, enable.StatusCode);
        Assert.Contains("Two-step verification is <strong>on</strong>", enabled, StringComparison.Ordinal);
        var recoveryCodes = RecoveryCode().Matches(enabled).Select(m => m.Groups["code"].Value).ToList();
        Assert.Equal(10, recoveryCodes.Count);

        // A new browser: the password alone no longer signs in.
        using var second = host.CreateClient();
        var login = await SubmitLoginAsync(second, "/account", "dave", "Dave-Guards-The-Keys-42");
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        Assert.StartsWith("/account/login-2fa", login.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await second.GetAsync(new Uri("account", UriKind.Relative), Cancel)).StatusCode); // not signed in yet
        var wrong = await SubmitSecondFactorAsync(second, "000000", recovery: false);
        Assert.Equal(HttpStatusCode.OK, wrong.StatusCode);
        // The code of the next 30-second step (accepted within the allowed clock drift): a code already used to enrol is not accepted again.
        var right = await SubmitSecondFactorAsync(second, Totp.Code(key, DateTimeOffset.UtcNow.AddSeconds(30)), recovery: false);
        Assert.Equal(HttpStatusCode.Redirect, right.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await second.GetAsync(new Uri("account", UriKind.Relative), Cancel)).StatusCode);

        // A recovery code signs in once.
        using var third = host.CreateClient();
        await SubmitLoginAsync(third, "/account", "dave", "Dave-Guards-The-Keys-42");
        Assert.Equal(HttpStatusCode.Redirect, (await SubmitSecondFactorAsync(third, recoveryCodes[0], recovery: true)).StatusCode);
        using var fourth = host.CreateClient();
        await SubmitLoginAsync(fourth, "/account", "dave", "Dave-Guards-The-Keys-42");
        Assert.Equal(HttpStatusCode.OK, (await SubmitSecondFactorAsync(fourth, recoveryCodes[0], recovery: true)).StatusCode);

        await host.FlushEventsAsync();
        var events = await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking().Where(e => e.UserName == "dave").ToListAsync(Cancel));
        Assert.Contains(events, e => e.Action == "mfa_change" && e.Details == "totp_enabled");
        Assert.Contains(events, e => e.Action == "login" && e.Details!.Contains("otp", StringComparison.Ordinal));
    }

    private static async Task<HttpResponseMessage> SubmitSecondFactorAsync(HttpClient http, string code, bool recovery)
    {
        var page = await http.GetStringAsync(new Uri("account/login-2fa?ReturnUrl=%2Faccount", UriKind.Relative), Cancel);
        var form = new Dictionary<string, string> { ["Code"] = code, ["ReturnUrl"] = "/account", ["__RequestVerificationToken"] = AntiForgeryToken(page) };
        if (recovery)
        {
            form["Recovery"] = "true";
        }

        return await http.PostAsync(new Uri("account/login-2fa", UriKind.Relative), new FormUrlEncodedContent(form), Cancel);
    }

    private async Task<(HttpStatusCode Status, string Message, int HashVerifications)> FailedAttemptAsync(string userName, string password)
    {
        using var http = host.CreateClient();
        var before = host.Hasher.Verifications;
        var response = await SubmitLoginAsync(http, "/account", userName, password);
        var verifications = host.Hasher.Verifications - before;
        var body = await response.Content.ReadAsStringAsync(Cancel);
        var message = ErrorMessage().Match(body).Value;
        Assert.NotEmpty(message);
        return (response.StatusCode, message, verifications);
    }

    [GeneratedRegex("<div class=\"error\" role=\"alert\"[^>]*>[\\s\\S]*?</div>")]
    private static partial Regex ErrorMessage();

    [GeneratedRegex("id=\"shared-key\">(?<key>[a-z2-7 ]+)<")]
    private static partial Regex SharedKey();

    [GeneratedRegex("<li><code>(?<code>[A-Z0-9-]+)</code></li>")]
    private static partial Regex RecoveryCode();
}
