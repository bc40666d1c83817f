using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>The host with a public CLI client allowed the device authorization grant, and a small per-user budget for typing codes.</summary>
public sealed class DeviceFlowHost : IdentityHost
{
    public const string Client = "device-cli";
    public const int CodesPerUserPerMinute = 5;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Clients:0:ClientId"] = Client,
        ["Identity:Clients:0:DisplayName"] = "Sales CLI",
        ["Identity:Clients:0:GrantTypes:0"] = "urn:ietf:params:oauth:grant-type:device_code",
        ["Identity:Clients:0:GrantTypes:1"] = "refresh_token",
        ["Identity:Clients:0:Scopes:0"] = "openid",
        ["Identity:Clients:0:Scopes:1"] = "profile",
        ["Identity:Clients:0:Scopes:2"] = "offline_access",
        ["Identity:Clients:0:Scopes:3"] = "crm.api",
        ["Identity:Throttling:DeviceCodePerIpPerMinute"] = "100000",
        ["Identity:Throttling:DeviceCodePerUserPerMinute"] = CodesPerUserPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// The device authorization grant (RFC 8628) through the real host over plain HTTP: a CLI asks for a code, a person signs
/// in on the verification page and allows or denies it with form posts, and the polling CLI gets tokens, access_denied,
/// authorization_pending or slow_down (§3.5). User codes follow §6.1; typing them is throttled (§5.1); approval needs the
/// page's anti-forgery token.
/// </summary>
public sealed partial class DeviceFlowTests(DeviceFlowHost host) : IClassFixture<DeviceFlowHost>
{
    private const string DeviceGrant = "urn:ietf:params:oauth:grant-type:device_code";

    [Fact]
    public async Task Discovery_advertises_the_device_authorization_endpoint_and_grant()
    {
        using var http = host.CreateClient();
        var discovery = JsonDocument.Parse(await http.GetStringAsync(new Uri(".well-known/openid-configuration", UriKind.Relative), Cancel)).RootElement;

        Assert.Equal(new Uri(host.BaseAddress, "connect/device").AbsoluteUri, discovery.GetProperty("device_authorization_endpoint").GetString());
        Assert.Contains(DeviceGrant, discovery.GetProperty("grant_types_supported").EnumerateArray().Select(g => g.GetString()));
    }

    [Fact]
    public async Task The_device_gets_tokens_after_the_user_approves_its_code()
    {
        using var device = host.CreateClient();
        var authorization = await DeviceAuthorizationAsync(device);
        var userCode = authorization.GetProperty("user_code").GetString()!;
        // RFC 8628 §6.1: letters only from the unambiguous set, shown as XXXX-XXXX, about 34.6 bits.
        Assert.Matches(UserCodeFormat(), userCode);
        Assert.Equal(new Uri(host.BaseAddress, "connect/verify").AbsoluteUri, authorization.GetProperty("verification_uri").GetString());
        Assert.InRange(authorization.GetProperty("expires_in").GetInt32(), 590, 600);

        // The person types the code as they like it: lower case, without the dash.
        using var browser = host.CreateClient();
        var page = await SignInAndOpenAsync(browser, "alice", userCode.Replace("-", "", StringComparison.Ordinal).ToLowerInvariant());
        Assert.Contains("Allow Sales CLI on your device?", page, StringComparison.Ordinal);
        Assert.Contains(userCode, page, StringComparison.Ordinal);
        var decided = await DecideAsync(browser, page, userCode, "accept");
        Assert.Equal(HttpStatusCode.Redirect, decided.StatusCode);
        Assert.EndsWith("/connect/verify?outcome=approved", decided.Headers.Location!.OriginalString, StringComparison.Ordinal);

        var (status, body) = await PollAsync(device, authorization);

        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
        var accessToken = Payload(body.GetProperty("access_token").GetString()!);
        Assert.Equal(DeviceFlowHost.Client, accessToken.GetProperty("client_id").GetString());
        Assert.Equal("alice", Payload(body.GetProperty("id_token").GetString()!).GetProperty("preferred_username").GetString());
        Assert.True(body.TryGetProperty("refresh_token", out _));
        // A device code is spent once: polling with it again gives no second set of tokens.
        var (again, againBody) = await PollAsync(device, authorization);
        Assert.Equal(HttpStatusCode.BadRequest, again);
        Assert.False(againBody.TryGetProperty("access_token", out _), againBody.ToString());
    }

    [Fact]
    public async Task The_device_gets_access_denied_when_the_user_denies_its_code()
    {
        using var device = host.CreateClient();
        var authorization = await DeviceAuthorizationAsync(device);
        var userCode = authorization.GetProperty("user_code").GetString()!;
        using var browser = host.CreateClient();
        var page = await SignInAndOpenAsync(browser, "ed", userCode);

        var decided = await DecideAsync(browser, page, userCode, "deny");
        var (status, body) = await PollAsync(device, authorization);

        Assert.EndsWith("/connect/verify?outcome=denied", decided.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("access_denied", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Polling_before_approval_is_pending_and_polling_too_fast_is_slow_down()
    {
        using var device = host.CreateClient();
        var authorization = await DeviceAuthorizationAsync(device);

        var (firstStatus, first) = await PollAsync(device, authorization);
        var (secondStatus, second) = await PollAsync(device, authorization);

        Assert.Equal(HttpStatusCode.BadRequest, firstStatus);
        Assert.Equal("authorization_pending", first.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, secondStatus);
        Assert.Equal("slow_down", second.GetProperty("error").GetString());
    }

    [Fact]
    public async Task An_approval_posted_without_the_pages_anti_forgery_token_is_refused_and_approves_nothing()
    {
        // Cross-site request forgery: another site makes the signed-in user's browser post "accept" for the attacker's code.
        using var device = host.CreateClient();
        var authorization = await DeviceAuthorizationAsync(device);
        var userCode = authorization.GetProperty("user_code").GetString()!;
        using var browser = host.CreateClient();
        await SignInAndOpenAsync(browser, "grace", userCode);

        var forged = await browser.PostAsync(new Uri("connect/verify", UriKind.Relative),
            new FormUrlEncodedContent(new Dictionary<string, string> { ["user_code"] = userCode, ["decision"] = "accept" }), Cancel);
        var (status, body) = await PollAsync(device, authorization);

        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("authorization_pending", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Guessing_user_codes_is_throttled_per_user_and_unknown_codes_say_nothing_more()
    {
        using var browser = host.CreateClient();
        var first = await SignInAndOpenAsync(browser, "bob", "BBBB-BBBB");
        Assert.Contains("That code is not valid.", first, StringComparison.Ordinal);
        var statuses = new List<HttpStatusCode>();
        for (var i = 1; i <= DeviceFlowHost.CodesPerUserPerMinute; i++)
        {
            using var response = await browser.GetAsync(new Uri($"connect/verify?user_code=BBBB-BBC{"DFGHJKLMNP"[i]}", UriKind.Relative), Cancel);
            statuses.Add(response.StatusCode);
        }

        // RFC 8628 §5.1: the 5th guess within the minute is within budget only if none was spent before; the next is refused.
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[^1]);
        Assert.All(statuses.Take(DeviceFlowHost.CodesPerUserPerMinute - 1), status => Assert.Equal(HttpStatusCode.OK, status));
    }

    [Fact]
    public async Task A_client_not_allowed_the_grant_cannot_start_a_device_flow()
    {
        // Off by default: demo-crm's configuration does not list the device code grant.
        using var http = host.CreateClient();
        var (status, body) = await PostFormAsync(http, "connect/device", new Dictionary<string, string> { ["scope"] = "openid crm.api" }, (CrmClient, CrmSecret));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("unauthorized_client", body.GetProperty("error").GetString());
    }

    private static async Task<JsonElement> DeviceAuthorizationAsync(HttpClient http)
    {
        var (status, body) = await PostFormAsync(http, "connect/device", new Dictionary<string, string>
        {
            ["client_id"] = DeviceFlowHost.Client,
            ["scope"] = "openid profile offline_access crm.api",
        });
        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
        return body;
    }

    private static Task<(HttpStatusCode Status, JsonElement Body)> PollAsync(HttpClient http, JsonElement authorization) =>
        PostFormAsync(http, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = DeviceGrant,
            ["device_code"] = authorization.GetProperty("device_code").GetString()!,
            ["client_id"] = DeviceFlowHost.Client,
        });

    /// <summary>Opens the verification page with a code the way a person does: sent to sign in first, then back to the page.</summary>
    private static async Task<string> SignInAndOpenAsync(HttpClient browser, string userName, string typedCode)
    {
        var path = "/connect/verify?user_code=" + Uri.EscapeDataString(typedCode);
        using var first = await browser.GetAsync(new Uri(path.TrimStart('/'), UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        Assert.Contains("/account/login", first.Headers.Location!.OriginalString, StringComparison.Ordinal);
        using var login = await SubmitLoginAsync(browser, path, userName, DemoPasswords.ByUser[userName]);
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        using var page = await browser.GetAsync(login.Headers.Location, Cancel);
        var text = await page.Content.ReadAsStringAsync(Cancel);
        Assert.True(page.StatusCode == HttpStatusCode.OK, $"{page.StatusCode} {text}");
        return text;
    }

    private static Task<HttpResponseMessage> DecideAsync(HttpClient browser, string page, string userCode, string decision) =>
        browser.PostAsync(new Uri("connect/verify", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["user_code"] = userCode,
            ["decision"] = decision,
            ["__RequestVerificationToken"] = AntiForgeryToken(page),
        }), Cancel);

    [GeneratedRegex("^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")]
    private static partial Regex UserCodeFormat();
}
