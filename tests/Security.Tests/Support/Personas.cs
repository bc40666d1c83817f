using System.Net;
using System.Text.Json;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Support;

/// <summary>
/// The demo organisation's people and clients (docs/identity.md, "Try it") as attackers and victims: a token for any of them is
/// obtained exactly as a CRM app obtains one, through the authorization code flow or client credentials.
/// </summary>
public static class Personas
{
    public static readonly IReadOnlyDictionary<string, string> Passwords = DemoPasswords.ByUser;

    public static readonly IReadOnlyDictionary<string, string> ClientSecrets = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["demo-crm"] = "demo-crm-secret",
        ["demo-secops"] = "demo-secops-secret",
        ["demo-audit"] = "demo-audit-secret",
    };

    public static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>The token response of <paramref name="user"/> signing in to demo-crm and asking for <paramref name="scope"/>.</summary>
    public static async Task<JsonElement> SignInAsync(SecurityHost host, string user, string scope = "openid profile roles crm.api")
    {
        using var http = host.CreateClient();
        return await OAuthFlows.SignInAsync(http, user, Passwords[user], scope);
    }

    /// <summary><paramref name="user"/>'s access token from demo-crm for <paramref name="scope"/>.</summary>
    public static async Task<string> UserTokenAsync(SecurityHost host, string user, string scope = "openid profile roles crm.api") =>
        (await SignInAsync(host, user, scope)).GetProperty("access_token").GetString()!;

    /// <summary>The token endpoint's answer to a client-credentials request (status and body), for tests of refusals.</summary>
    public static async Task<(HttpStatusCode Status, JsonElement Body)> RequestClientTokenAsync(SecurityHost host, string client, string scope, string? secret = null)
    {
        using var http = host.CreateClient();
        return await OAuthFlows.PostFormAsync(http, "connect/token",
            new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }, (client, secret ?? ClientSecrets[client]));
    }

    /// <summary>A client's own access token (client credentials) for <paramref name="scope"/>.</summary>
    public static async Task<string> ClientTokenAsync(SecurityHost host, string client, string scope, string? secret = null)
    {
        var (status, body) = await RequestClientTokenAsync(host, client, scope, secret);
        Assert.True(status == HttpStatusCode.OK, $"client_credentials for {client} failed: {status} {body}");
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary>The <c>sub</c> (user id) of a demo user, read from one of their tokens.</summary>
    public static async Task<string> UserIdAsync(SecurityHost host, string user) =>
        OAuthFlows.Payload(await UserTokenAsync(host, user, "openid")).GetProperty("sub").GetString()!;
}
