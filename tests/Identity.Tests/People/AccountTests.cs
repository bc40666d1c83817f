using System.Net;
using System.Text.RegularExpressions;
using CrmSecurity.Identity.Tests.Support;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.People;

public sealed partial class AccountTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task Changing_the_password_applies_the_deny_list_and_the_new_password_then_signs_in()
    {
        using var http = host.CreateClient();
        Assert.Equal(HttpStatusCode.Redirect, (await SubmitLoginAsync(http, "/account", "bob", "Bob-Manages-The-Team-42")).StatusCode);

        var common = await ChangePasswordAsync(http, "Bob-Manages-The-Team-42", "1234567890");
        Assert.Contains("commonly used passwords", common, StringComparison.Ordinal);

        var changed = await ChangePasswordAsync(http, "Bob-Manages-The-Team-42", "copper-lantern-meadow-77");
        Assert.Contains("Your password was changed.", changed, StringComparison.Ordinal);

        using var again = host.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await SubmitLoginAsync(again, "/account", "bob", "Bob-Manages-The-Team-42")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await SubmitLoginAsync(again, "/account", "bob", "copper-lantern-meadow-77")).StatusCode);
    }

    [Fact]
    public async Task A_password_reset_link_is_mailed_only_for_a_known_address_and_sets_a_new_password_once()
    {
        using var http = host.CreateClient();
        var mail = Path.Combine(host.Directory, "mail");
        var unknown = await RequestResetAsync(http, "nobody@demo.example");
        var known = await RequestResetAsync(http, "carol@demo.example");

        Assert.Equal(unknown, known); // the same page either way
        // Only carol's: other tests of the class change passwords, which mails their owners a notice.
        var message = Assert.Single(Directory.GetFiles(mail), file => File.ReadAllText(file).Contains("To: carol@demo.example", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(Directory.GetFiles(mail), file => File.ReadAllText(file).Contains("nobody@demo.example", StringComparison.OrdinalIgnoreCase));
        var link = new Uri(ResetLink().Match(await File.ReadAllTextAsync(message, Cancel)).Value);

        var page = await http.GetStringAsync(link, Cancel);
        var form = new Dictionary<string, string>
        {
            ["User"] = Hidden(page, "User"),
            ["Token"] = Hidden(page, "Token"),
            ["NewPassword"] = "granite-orchard-signal-31",
            ["__RequestVerificationToken"] = AntiForgeryToken(page),
        };
        var reset = await (await http.PostAsync(new Uri("account/reset-password", UriKind.Relative), new FormUrlEncodedContent(form), Cancel)).Content.ReadAsStringAsync(Cancel);
        Assert.Contains("Your password was changed.", reset, StringComparison.Ordinal);

        form["NewPassword"] = "another-granite-orchard-32";
        var reused = await (await http.PostAsync(new Uri("account/reset-password", UriKind.Relative), new FormUrlEncodedContent(form), Cancel)).Content.ReadAsStringAsync(Cancel);
        Assert.Contains("This reset link is not valid.", reused, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await SubmitLoginAsync(http, "/account", "carol", "granite-orchard-signal-31")).StatusCode);
    }

    private static async Task<string> ChangePasswordAsync(HttpClient http, string current, string next)
    {
        var page = await http.GetStringAsync(new Uri("account", UriKind.Relative), Cancel);
        var response = await http.PostAsync(new Uri("account?handler=ChangePassword", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["CurrentPassword"] = current,
            ["NewPassword"] = next,
            ["__RequestVerificationToken"] = AntiForgeryToken(page),
        }), Cancel);
        return await response.Content.ReadAsStringAsync(Cancel);
    }

    private static async Task<string> RequestResetAsync(HttpClient http, string email)
    {
        var page = await http.GetStringAsync(new Uri("account/forgot-password", UriKind.Relative), Cancel);
        var response = await http.PostAsync(new Uri("account/forgot-password", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = email,
            ["__RequestVerificationToken"] = AntiForgeryToken(page),
        }), Cancel);
        // Per-response values (the anti-forgery token, the style nonce) differ on any two pages; the rest must not.
        return StyleNonce().Replace(AntiForgery().Replace(await response.Content.ReadAsStringAsync(Cancel), ""), "");
    }

    private static string Hidden(string page, string name) =>
        WebUtility.HtmlDecode(Regex.Match(page, $"name=\"{name}\" value=\"(?<v>[^\"]*)\"").Groups["v"].Value);

    [GeneratedRegex(@"http://\S+/account/reset-password\?\S+")]
    private static partial Regex ResetLink();

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"[^\"]+\"")]
    private static partial Regex AntiForgery();

    [GeneratedRegex("nonce=\"[0-9a-f]+\"")]
    private static partial Regex StyleNonce();
}
