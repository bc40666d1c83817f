using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Crypto.Keys.Insecure;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Crypto;

/// <summary>
/// The security host with the Crypto module and its encryption service on (a keyring under the host's own master key
/// file), and the clients a bank would register for it: one CRM back end per tenant (<c>acme-crm</c>, <c>globex-crm</c>),
/// the demo organisation's CRM back end (<c>demo-backend</c>: sign-in, token exchange, its own token) and a mobile app
/// (<c>demo-mobile</c>, a public client whose tokens sit on the user's phone). Globex's CRM and the demo back end may also
/// rewrap values to the current key version (<c>crypto:rewrap</c>).
/// </summary>
public class CryptoSecurityHost : SecurityHost
{
    public const string Secret = "crypto-client-secret-for-attack-tests";
    public const string AcmeClient = "acme-crm";
    public const string GlobexClient = "globex-crm";
    public const string BackendClient = "demo-backend";
    public const string BackendRedirect = "http://localhost:5091/signin-oidc";
    public const string MobileClient = "demo-mobile";
    public const string MobileRedirect = "http://localhost:5092/callback";
    public const string TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange";

    public string KeyringPath => Path.Combine(Directory, "keyring.json");

    public string EventFile => Path.Combine(Directory, "crypto-access-events.jsonl");

    protected override IReadOnlyDictionary<string, string?> Settings
    {
        get
        {
            var settings = new Dictionary<string, string?>
            {
                ["Modules:Crypto:Enabled"] = "true",
                // What a security team declares: contact emails searchable through one planned blind index (its bits
                // left to the planner), national ids and mobile numbers deterministic for equality lookups.
                ["Crypto:Columns:0:Table"] = "contact",
                ["Crypto:Columns:0:Column"] = "email",
                ["Crypto:Columns:0:ExpectedRows"] = "1000000",
                ["Crypto:Columns:0:BlindIndexes:0:Name"] = "email_eq",
                ["Crypto:Columns:0:BlindIndexes:0:Normaliser"] = "email",
                ["Crypto:Columns:1:Table"] = "contact",
                ["Crypto:Columns:1:Column"] = "national_id",
                ["Crypto:Columns:1:Mode"] = "Deterministic",
                ["Crypto:Columns:2:Table"] = "contact",
                ["Crypto:Columns:2:Column"] = "mobile",
                ["Crypto:Columns:2:Mode"] = "Deterministic",
            };
            Client(settings, 0, AcmeClient, Secret, ["client_credentials"], ["crypto:encrypt", "crypto:decrypt", "crypto:index"], ["acme"]);
            Client(settings, 1, GlobexClient, Secret, ["client_credentials"], ["crypto:encrypt", "crypto:decrypt", "crypto:index", "crypto:rewrap"], ["globex"]);
            // The back end may also rewrap (its rotation job); crypto:rewrap is client-only, so no user signed in to it gets it.
            Client(settings, 2, BackendClient, Secret, ["authorization_code", "client_credentials", TokenExchange], ["openid", "crypto:encrypt", "crypto:decrypt", "crypto:index", "crypto:rewrap"], ["demo"], BackendRedirect);
            Client(settings, 3, MobileClient, null, ["authorization_code"], ["openid", "crypto:decrypt"], ["demo"], MobileRedirect);
            foreach (var (key, value) in ExtraSettings)
            {
                settings[key] = value;
            }

            return settings;
        }
    }

    /// <summary>More settings for a subclass (e.g. column declarations).</summary>
    protected virtual IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>();

    public override async ValueTask InitializeAsync()
    {
        // The installation's master key and a keyring wrapped under it, as `keys init` leaves them.
        using (var kek = LocalMasterKey.Generate())
        {
            await File.WriteAllTextAsync(MasterKeyPath, InsecureCleartextKeyMaterial.ExportBase64(kek), TestContext.Current.CancellationToken);
            using var keyring = Keyring.CreateNew();
            keyring.Save(KeyringPath, kek);
        }

        await base.InitializeAsync();
    }

    /// <summary>A client's own access token (client credentials).</summary>
    public async Task<string> ClientTokenAsync(string client, string scope)
    {
        using var http = CreateClient();
        var (status, body) = await OAuthFlows.PostFormAsync(http, "connect/token",
            new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }, (client, Secret));
        Assert.True(status == HttpStatusCode.OK, $"client_credentials for {client}: {status} {body}");
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary><paramref name="user"/>'s own access token from the mobile app (a public client: the token is in the user's hands).</summary>
    public async Task<string> MobileUserTokenAsync(string user, string scope = "openid crypto:decrypt")
    {
        using var http = CreateClient();
        var body = await OAuthFlows.SignInAsync(http, user, Personas.Passwords[user], scope, MobileClient, secret: null, MobileRedirect);
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary>
    /// The CRM back end acting for <paramref name="user"/>: the user signs in to it, and it exchanges the user's token for
    /// one to the encryption service (RFC 8693), which names the back end in <c>act</c>.
    /// </summary>
    public async Task<string> BackendTokenForAsync(string user, string scope = "crypto:decrypt")
    {
        using var http = CreateClient();
        var signedIn = await OAuthFlows.SignInAsync(http, user, Personas.Passwords[user], "openid crypto:decrypt", BackendClient, Secret, BackendRedirect);
        var (status, body) = await OAuthFlows.PostFormAsync(http, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = TokenExchange,
            ["subject_token"] = signedIn.GetProperty("access_token").GetString()!,
            ["subject_token_type"] = "urn:ietf:params:oauth:token-type:access_token",
            ["scope"] = scope,
        }, (BackendClient, Secret));
        Assert.True(status == HttpStatusCode.OK, $"token exchange for {user}: {status} {body}");
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary>Encrypts a value as the CRM back end does when it stores a record.</summary>
    public async Task<string> EncryptAsync(string token, string tenant, string table, string column, string? rowId, string plaintext, string mode = "randomized")
    {
        using var http = CreateClient(token);
        using var response = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant, table, column, rowId, mode, plaintext }, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"encrypt: {(int)response.StatusCode} {body}");
        return body.GetProperty("ciphertext").GetString()!;
    }

    /// <summary>POSTs a request to the encryption service and returns status, body text and the response.</summary>
    public async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> PostAsync(string token, string path, object request)
    {
        using var http = CreateClient(token);
        var response = await http.PostAsJsonAsync(path, request, TestContext.Current.CancellationToken);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), response);
    }

    /// <summary>The crypto access events written to the module's JSON Lines file.</summary>
    public async Task<JsonElement[]> CryptoEventsAsync() =>
        File.Exists(EventFile)
            ? [.. (await File.ReadAllLinesAsync(EventFile, TestContext.Current.CancellationToken)).Select(line => JsonDocument.Parse(line).RootElement.Clone())]
            : [];

    private static void Client(Dictionary<string, string?> settings, int index, string id, string? secret, string[] grants, string[] scopes, string[] tenants, string? redirect = null)
    {
        var prefix = $"Identity:Clients:{index}:";
        settings[prefix + "ClientId"] = id;
        if (secret is not null)
        {
            settings[prefix + "ClientSecret"] = secret;
        }

        settings[prefix + "FirstParty"] = "true";
        for (var i = 0; i < grants.Length; i++)
        {
            settings[$"{prefix}GrantTypes:{i}"] = grants[i];
        }

        for (var i = 0; i < scopes.Length; i++)
        {
            settings[$"{prefix}Scopes:{i}"] = scopes[i];
        }

        for (var i = 0; i < tenants.Length; i++)
        {
            settings[$"{prefix}Tenants:{i}"] = tenants[i];
        }

        if (redirect is not null)
        {
            settings[prefix + "RedirectUris:0"] = redirect;
        }
    }
}
