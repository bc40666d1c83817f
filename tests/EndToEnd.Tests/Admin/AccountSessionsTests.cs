using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// Carol left herself signed in on a meeting-room PC. From her own laptop she finds that session on her account page
/// and signs it out; the meeting-room browser is back at the sign-in page on its next click.
/// </summary>
public sealed class AccountSessionsTests(AdminSite site) : IClassFixture<AdminSite>
{
    [Fact]
    public async Task Carol_signs_out_the_session_she_left_open_on_another_computer()
    {
        var meetingRoom = await site.SignInAsync("carol", "Carol-Reads-The-Logs-42", "/account");
        var laptop = await site.SignInAsync("carol", "Carol-Reads-The-Logs-42", "/account");
        await laptop.ReloadAsync();

        var sessions = laptop.GetByRole(AriaRole.Table, new() { Name = "Where you are signed in" });
        await Assertions.Expect(sessions.GetByRole(AriaRole.Row)).ToHaveCountAsync(3); // the header and two sessions
        await Assertions.Expect(sessions).ToContainTextAsync("This browser");
        await AdminSite.ScreenshotAsync(laptop, "carol-account-sessions");

        await sessions.GetByRole(AriaRole.Button, new() { NameRegex = new System.Text.RegularExpressions.Regex("^Sign out the session") }).ClickAsync();

        await Assertions.Expect(laptop.GetByRole(AriaRole.Status)).ToContainTextAsync("That session is signed out.");
        await Assertions.Expect(sessions.GetByRole(AriaRole.Row)).ToHaveCountAsync(2);
        await AdminSite.ScreenshotAsync(laptop, "carol-account-session-signed-out");
        await meetingRoom.ReloadAsync();
        await Assertions.Expect(meetingRoom).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/account/login"));
    }
}
