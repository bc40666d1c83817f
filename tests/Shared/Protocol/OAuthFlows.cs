using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;

namespace CrmSecurity.Tests.Support;

/// <summary>The protocol steps a relying party takes, spelled out over plain HTTP.</summary>
public static partial class OAuthFlows
{
    public const string CrmClient = "demo-crm";
    public const string CrmSecret = "demo-crm-secret";
    public const string CrmRedirect = "http://localhost:5081/signin-oidc";
    public const string SpaClient = "demo-spa";
    public const string SpaRedirect = "http://localhost:5082/callback";
    public const string AlicePassword = "Alice-Sells-Widgets-42";

    public static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public static (string Verifier, string Challenge) Pkce()
    {
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        return (verifier, challenge);
    }

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static async Task<(HttpStatusCode Status, JsonElement Body)> PostFormAsync(HttpClient http, string path, IDictionary<string, string> form, (string Id, string Secret)? basic = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(form) };
        if (basic is { } credentials)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(credentials.Id)}:{Uri.EscapeDataString(credentials.Secret)}")));
        }

        using var response = await http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        var body = text.Length > 0 && text.TrimStart().StartsWith('{') ? JsonDocument.Parse(text).RootElement.Clone() : default;
        return (response.StatusCode, body);
    }

    public static async Task<JsonElement> ClientCredentialsAsync(HttpClient http, string scope = "crm.api", string client = CrmClient, string secret = CrmSecret)
    {
        var (status, body) = await PostFormAsync(http, "connect/token", new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }, (client, secret));
        Assert.True(status == HttpStatusCode.OK, $"client_credentials failed: {status} {body}");
        return body;
    }

    public static Task<(HttpStatusCode Status, JsonElement Body)> IntrospectAsync(HttpClient http, string token, string client = CrmClient, string secret = CrmSecret) =>
        PostFormAsync(http, "connect/introspect", new Dictionary<string, string> { ["token"] = token }, (client, secret));

    public static async Task<bool> IsActiveAsync(HttpClient http, string token)
    {
        var (status, body) = await IntrospectAsync(http, token);
        Assert.Equal(HttpStatusCode.OK, status);
        return body.GetProperty("active").GetBoolean();
    }

    public static Task<(HttpStatusCode Status, JsonElement Body)> RevokeAsync(HttpClient http, string token, string client = CrmClient, string secret = CrmSecret) =>
        PostFormAsync(http, "connect/revoke", new Dictionary<string, string> { ["token"] = token }, (client, secret));

    public static Task<(HttpStatusCode Status, JsonElement Body)> RefreshAsync(HttpClient http, string refreshToken, string client = CrmClient, string secret = CrmSecret) =>
        PostFormAsync(http, "connect/token", new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = refreshToken }, (client, secret));

    public static Dictionary<string, string> AuthorizeParameters(string challenge, string client = CrmClient, string redirect = CrmRedirect, string scope = "openid profile email roles offline_access crm.api") => new()
    {
        ["client_id"] = client,
        ["response_type"] = "code",
        ["redirect_uri"] = redirect,
        ["scope"] = scope,
        ["state"] = "state-" + Guid.NewGuid().ToString("N"),
        ["nonce"] = "nonce-" + Guid.NewGuid().ToString("N"),
        ["code_challenge"] = challenge,
        ["code_challenge_method"] = "S256",
    };

    public static string AuthorizeUrl(IDictionary<string, string> parameters) => QueryHelpers.AddQueryString("connect/authorize", parameters!);

    /// <summary>Signs in through the login form the way a browser does: GET the form, POST it with its anti-forgery token.</summary>
    public static async Task<HttpResponseMessage> SubmitLoginAsync(HttpClient http, string returnUrl, string userName, string password)
    {
        var page = await http.GetStringAsync(new Uri("account/login?ReturnUrl=" + Uri.EscapeDataString(returnUrl), UriKind.Relative), Cancel);
        var form = new Dictionary<string, string>
        {
            ["Username"] = userName,
            ["Password"] = password,
            ["ReturnUrl"] = returnUrl,
            ["__RequestVerificationToken"] = AntiForgeryToken(page),
        };
        return await http.PostAsync(new Uri("account/login", UriKind.Relative), new FormUrlEncodedContent(form), Cancel);
    }

    public static string AntiForgeryToken(string page) => AntiForgery().Match(page) is { Success: true } match
        ? WebUtility.HtmlDecode(match.Groups["token"].Value)
        : throw new InvalidOperationException("The page has no anti-forgery token.");

    /// <summary>Runs the authorization request through sign-in to the redirect that carries the code.</summary>
    public static async Task<Uri> AuthorizeAsync(HttpClient http, IDictionary<string, string> parameters, string userName = "alice", string password = AlicePassword)
    {
        var first = await http.GetAsync(new Uri(AuthorizeUrl(parameters), UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        var location = first.Headers.Location!;
        if (location.AbsolutePath.EndsWith("/account/login", StringComparison.Ordinal) || location.OriginalString.StartsWith("/account/login", StringComparison.Ordinal))
        {
            var returnUrl = QueryHelpers.ParseQuery(location.IsAbsoluteUri ? location.Query : location.OriginalString[location.OriginalString.IndexOf('?', StringComparison.Ordinal)..])["ReturnUrl"].ToString();
            var login = await SubmitLoginAsync(http, returnUrl, userName, password);
            Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
            var back = await http.GetAsync(login.Headers.Location, Cancel);
            Assert.Equal(HttpStatusCode.Redirect, back.StatusCode);
            location = back.Headers.Location!;
        }

        return location;
    }

    public static string CodeFrom(Uri redirect)
    {
        var query = QueryHelpers.ParseQuery(redirect.Query);
        Assert.True(query.ContainsKey("code"), $"No code in {redirect}");
        return query["code"].ToString();
    }

    public static Task<(HttpStatusCode Status, JsonElement Body)> RedeemAsync(HttpClient http, string code, string verifier, string redirect = CrmRedirect, string client = CrmClient, string? secret = CrmSecret)
    {
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["code"] = code,
            ["redirect_uri"] = redirect,
            ["code_verifier"] = verifier,
        };
        if (secret is null)
        {
            form["client_id"] = client;
            return PostFormAsync(http, "connect/token", form);
        }

        return PostFormAsync(http, "connect/token", form, (client, secret));
    }

    /// <summary>The whole code flow for a user with a client (demo-crm by default) on <paramref name="http"/>; returns the token response.</summary>
    public static async Task<JsonElement> SignInAsync(
        HttpClient http, string userName, string password, string scope = "openid profile email roles offline_access crm.api",
        string client = CrmClient, string? secret = CrmSecret, string redirect = CrmRedirect)
    {
        var (verifier, challenge) = Pkce();
        var location = await AuthorizeAsync(http, AuthorizeParameters(challenge, client, redirect, scope), userName, password);
        var (status, body) = await RedeemAsync(http, CodeFrom(location), verifier, redirect, client, secret);
        Assert.True(status == HttpStatusCode.OK, $"code redemption failed: {status} {body}");
        return body;
    }

    public static JsonElement Payload(string jwt) => JsonDocument.Parse(Decode(jwt.Split('.')[1])).RootElement.Clone();

    public static JsonElement Header(string jwt) => JsonDocument.Parse(Decode(jwt.Split('.')[0])).RootElement.Clone();

    private static byte[] Decode(string part)
    {
        var padded = part.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(padded.PadRight(padded.Length + ((4 - (padded.Length % 4)) % 4), '='));
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"(?<token>[^\"]+)\"")]
    private static partial Regex AntiForgery();
}
