using CrmSecurity.EndToEnd.Tests.Admin;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Account;

/// <summary>
/// Issue 15, "MFA cannot be turned off without a fresh authentication", for passkeys: the service with a short freshness
/// window (<c>Identity:Mfa:FreshAuthenticationToTurnOff</c>, 30 s here, 5 minutes shipped) and one headless Chromium with a
/// virtual authenticator. A session older than the window, an unattended browser or a stolen cookie, cannot remove a
/// passkey, neither through the page nor by posting the removal itself.
/// </summary>
public sealed class StaleSessionPasskeyTests(StalePasskeySite site) : IClassFixture<StalePasskeySite>
{
    internal static readonly TimeSpan Fresh = TimeSpan.FromSeconds(30);

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_session_older_than_the_freshness_window_cannot_remove_a_passkey_through_the_page_or_by_posting_the_removal()
    {
        var page = await site.NewPageWithAuthenticatorAsync();
        await PasskeySite.SignInWithPasswordAsync(page, "grace", "Grace-Runs-Campaigns-42", "/account/passkeys");
        var signedIn = DateTimeOffset.UtcNow; // the sign-in's auth_time is no later than this
        await PasskeySite.RegisterPasskeyAsync(page, "Grace's key");
        var remaining = signedIn + Fresh + TimeSpan.FromSeconds(2) - DateTimeOffset.UtcNow;
        if (remaining > TimeSpan.Zero)
        {
            await Task.Delay(remaining, Cancel);
        }

        // Through the page: no confirmation is offered, the page says to sign in again.
        await page.GotoAsync("/account/passkeys");
        await page.GetByRole(AriaRole.Button, new() { Name = "Remove the passkey Grace's key" }).ClickAsync();
        await Assertions.Expect(page.Locator("#fresh-sign-in")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Remove the passkey “Grace's key”?" })).ToHaveCountAsync(0);
        await AdminSite.ScreenshotAsync(page, "account-passkeys-remove-stale-session");

        // The attack: the stale session posts the confirmed removal itself, with the page's own anti-forgery token.
        var form = page.Locator("form[action*='handler=Remove']").First;
        var token = await form.Locator("input[name='__RequestVerificationToken']").GetAttributeAsync("value");
        var id = await form.Locator("input[name='Id']").GetAttributeAsync("value");
        var forged = await page.Context.APIRequest.PostAsync(new Uri(site.BaseAddress, "account/passkeys?handler=Remove").AbsoluteUri, new()
        {
            Form = FormOf(page, ("__RequestVerificationToken", token!), ("Id", id!), ("Confirm", "true")),
            MaxRedirects = 0,
        });
        var html = await forged.TextAsync();
        Assert.Equal(200, forged.Status);
        Assert.Contains("id=\"fresh-sign-in\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("was removed", html, StringComparison.Ordinal);
        await page.GotoAsync("/account/passkeys");
        await Assertions.Expect(page.GetByRole(AriaRole.Table, new() { Name = "Your passkeys" })).ToContainTextAsync("Grace's key");

        // A fresh sign-in may remove it.
        await page.Context.ClearCookiesAsync();
        await PasskeySite.SignInWithPasswordAsync(page, "grace", "Grace-Runs-Campaigns-42", "/account/passkeys");
        await page.GetByRole(AriaRole.Button, new() { Name = "Remove the passkey Grace's key" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Remove passkey" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status).First).ToContainTextAsync("was removed");
    }

    private static IFormData FormOf(IPage page, params (string Name, string Value)[] fields)
    {
        var form = page.Context.APIRequest.CreateFormData();
        foreach (var (name, value) in fields)
        {
            form.Set(name, value);
        }

        return form;
    }
}

/// <summary>The passkey site with the freshness window of <see cref="StaleSessionPasskeyTests"/> (30 s).</summary>
public sealed class StalePasskeySite : PasskeySite
{
    protected override void AddSettings(Dictionary<string, string?> settings) =>
        settings["Identity__Mfa__FreshAuthenticationToTurnOff"] = StaleSessionPasskeyTests.Fresh.ToString("c", System.Globalization.CultureInfo.InvariantCulture);
}
