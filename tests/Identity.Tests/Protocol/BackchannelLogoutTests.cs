using System.Net;
using System.Text.Json;
using CrmSecurity.Identity.Tests.Admin;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>The demo plus a client with a back-channel logout URI on a loopback receiver (the <see cref="JwksServer"/>).</summary>
public sealed class BackchannelLogoutHost : IdentityHost
{
    public const string Client = "bcl-app";
    public const string Secret = "bcl-app-secret-0123456789";
    public const string Redirect = "http://localhost:5091/signin-oidc";
    public const string Path = "/backchannel-logout";

    public JwksServer Receiver { get; } = new();

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:ClientJwks:AllowLoopbackHttp"] = "true",
        ["Identity:BackchannelLogout:FirstRetryDelay"] = "00:00:00.200",
        ["Identity:Clients:0:ClientId"] = Client,
        ["Identity:Clients:0:ClientSecret"] = Secret,
        ["Identity:Clients:0:GrantTypes:0"] = "authorization_code",
        ["Identity:Clients:0:Scopes:0"] = "openid",
        ["Identity:Clients:0:Scopes:1"] = "profile",
        ["Identity:Clients:0:RedirectUris:0"] = Redirect,
        ["Identity:Clients:0:BackchannelLogoutUri"] = Receiver.Url(Path),
        ["Identity:Clients:0:BackchannelLogoutSessionRequired"] = "true",
    };
}

/// <summary>
/// OpenID Connect Back-Channel Logout 1.0 through the real host: a logout token (§2.4) signed with a key of the provider's
/// JWKS reaches the client's receiver when the user signs out (with the session's <c>sid</c>, the one the ID token carried)
/// and when an administrator disables the user (no <c>sid</c>: every session), even when the receiver fails first (retried).
/// </summary>
public sealed class BackchannelLogoutTests(BackchannelLogoutHost host) : IClassFixture<BackchannelLogoutHost>
{
    private const string LogoutEvent = "http://schemas.openid.net/event/backchannel-logout";

    [Fact]
    public async Task Discovery_advertises_back_channel_logout_with_sessions_and_the_acr_values()
    {
        using var http = host.CreateClient();
        var discovery = JsonDocument.Parse(await http.GetStringAsync(new Uri(".well-known/openid-configuration", UriKind.Relative), Cancel)).RootElement;

        Assert.True(discovery.GetProperty("backchannel_logout_supported").GetBoolean());
        Assert.True(discovery.GetProperty("backchannel_logout_session_supported").GetBoolean());
        Assert.Equal(["urn:crm-security:acr:pwd", "urn:crm-security:acr:mfa"], discovery.GetProperty("acr_values_supported").EnumerateArray().Select(v => v.GetString()));
    }

    [Fact]
    public async Task Signing_out_sends_a_signed_logout_token_with_the_sid_of_the_id_token_even_after_a_failed_try()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAsync(http, "ed", DemoPasswordsFor("ed"), "openid profile", BackchannelLogoutHost.Client, BackchannelLogoutHost.Secret, BackchannelLogoutHost.Redirect);
        var idToken = Payload(tokens.GetProperty("id_token").GetString()!);
        var sid = idToken.GetProperty("sid").GetString()!;
        var before = host.Receiver.Posts(BackchannelLogoutHost.Path).Count;
        host.Receiver.FailPosts(BackchannelLogoutHost.Path, 1);

        var page = await http.GetStringAsync(new Uri("connect/logout", UriKind.Relative), Cancel);
        var signedOut = await http.PostAsync(new Uri("connect/logout", UriKind.Relative),
            new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = AntiForgeryToken(page) }), Cancel);
        Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);

        var token = await NextLogoutTokenAsync(before, sid);
        var claims = await VerifiedAsync(http, token);
        Assert.Equal(idToken.GetProperty("sub").GetString(), claims.GetProperty("sub").GetString());
        Assert.Equal(sid, claims.GetProperty("sid").GetString());
    }

    [Fact]
    public async Task Disabling_a_user_sends_a_logout_token_for_every_session_of_theirs()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAsync(http, "grace", DemoPasswordsFor("grace"), "openid profile", BackchannelLogoutHost.Client, BackchannelLogoutHost.Secret, BackchannelLogoutHost.Redirect);
        var subject = Payload(tokens.GetProperty("id_token").GetString()!).GetProperty("sub").GetString()!;
        var before = host.Receiver.Posts(BackchannelLogoutHost.Path).Count;

        var admin = await AdminApi.SecOpsAsync(host);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.SendAsync(HttpMethod.Post, $"admin/api/users/{subject}/disable", null)).Status);

        var token = await NextLogoutTokenAsync(before, sid: null);
        var claims = await VerifiedAsync(http, token);
        Assert.Equal(subject, claims.GetProperty("sub").GetString());
        Assert.False(claims.TryGetProperty("sid", out _));
    }

    private static string DemoPasswordsFor(string user) => CrmSecurity.Tests.Support.DemoPasswords.ByUser[user];

    /// <summary>Waits (up to 15 s) for a logout token POSTed after the first <paramref name="before"/>, with that sid if given.</summary>
    private async Task<string> NextLogoutTokenAsync(int before, string? sid)
    {
        for (var waited = 0; waited < 150; waited++)
        {
            foreach (var form in host.Receiver.Posts(BackchannelLogoutHost.Path).Skip(before))
            {
                var token = form["logout_token"];
                var payload = Payload(token);
                if (sid is null || (payload.TryGetProperty("sid", out var got) && got.GetString() == sid))
                {
                    return token;
                }
            }

            await Task.Delay(100, Cancel);
        }

        throw new TimeoutException("No logout token reached the receiver.");
    }

    /// <summary>Validates the logout token as a relying party must (§2.6) against the provider's JWKS; returns its claims.</summary>
    private async Task<JsonElement> VerifiedAsync(HttpClient http, string token)
    {
        var jwks = new JsonWebKeySet(await http.GetStringAsync(new Uri(".well-known/jwks", UriKind.Relative), Cancel));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = host.Issuer,
            ValidAudience = BackchannelLogoutHost.Client,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["logout+jwt"],
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        var payload = Payload(token);
        Assert.True(payload.GetProperty("iat").GetInt64() > 0);
        Assert.False(string.IsNullOrEmpty(payload.GetProperty("jti").GetString()));
        Assert.Equal(JsonValueKind.Object, payload.GetProperty("events").GetProperty(LogoutEvent).ValueKind);
        Assert.False(payload.TryGetProperty("nonce", out _)); // §2.4: a nonce is prohibited
        return payload;
    }
}
