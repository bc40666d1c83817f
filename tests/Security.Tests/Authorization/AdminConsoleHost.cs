using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// The demo host plus what a real installation has for its admins: an admin console (a first-party client allowed to ask
/// for <c>identity.admin</c> in the code flow), so that people, not only the security-operations client, call the admin
/// API with tokens of their own. Attackers in these tests sign in there with their own passwords.
/// </summary>
public class AdminConsoleHost : SecurityHost
{
    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _tokens = new(StringComparer.Ordinal);

    public const string ConsoleClient = "admin-console";
    public const string ConsoleSecret = "admin-console-secret-for-tests";
    public const string ConsoleRedirect = "http://localhost:5083/callback";

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Clients:0:ClientId"] = ConsoleClient,
        ["Identity:Clients:0:DisplayName"] = "Admin console",
        ["Identity:Clients:0:ClientSecret"] = ConsoleSecret,
        ["Identity:Clients:0:GrantTypes:0"] = "authorization_code",
        ["Identity:Clients:0:Scopes:0"] = "openid",
        ["Identity:Clients:0:Scopes:1"] = "identity.admin",
        ["Identity:Clients:0:Scopes:2"] = "authz.decide",
        ["Identity:Clients:0:RedirectUris:0"] = ConsoleRedirect,
        ["Identity:Clients:0:FirstParty"] = "true",

        // A service account the tests bind to an application user (as a SOAR tool would be).
        ["Identity:Clients:1:ClientId"] = RobotClient,
        ["Identity:Clients:1:ClientSecret"] = RobotSecret,
        ["Identity:Clients:1:GrantTypes:0"] = "client_credentials",
        ["Identity:Clients:1:Scopes:0"] = "identity.admin",

        // A client allowed the admin scope but bound to no user of the model: the scope alone must open nothing.
        ["Identity:Clients:2:ClientId"] = UnboundClient,
        ["Identity:Clients:2:ClientSecret"] = UnboundSecret,
        ["Identity:Clients:2:GrantTypes:0"] = "client_credentials",
        ["Identity:Clients:2:Scopes:0"] = "identity.admin",

        // A CRM integration whose tokens an incident revokes.
        ["Identity:Clients:3:ClientId"] = VictimClient,
        ["Identity:Clients:3:ClientSecret"] = VictimSecret,
        ["Identity:Clients:3:GrantTypes:0"] = "client_credentials",
        ["Identity:Clients:3:Scopes:0"] = "crm.api",
    };

    public const string RobotClient = "ops-robot";
    public const string RobotSecret = "ops-robot-secret-for-tests";
    public const string UnboundClient = "unbound-admin-client";
    public const string UnboundSecret = "unbound-admin-secret-for-tests";
    public const string VictimClient = "crm-integration";
    public const string VictimSecret = "crm-integration-secret-for-tests";

    /// <summary>One admin-console token per person for the whole class (signing in costs a password hash each time).</summary>
    public Task<string> AdminTokenOf(string user) =>
        _tokens.GetOrAdd(user, name => new Lazy<Task<string>>(() => AdminConsole.AdminTokenAsync(this, name))).Value;
}

/// <summary>HTTP calls of the admin API, the incident endpoints and the decision API, as the attacker sends them.</summary>
public static class AdminConsole
{
    /// <summary><paramref name="user"/>'s own access token from the admin console (scope identity.admin), after signing in with their password.</summary>
    public static async Task<string> AdminTokenAsync(SecurityHost host, string user, string scope = "openid identity.admin")
    {
        using var http = host.CreateClient();
        var tokens = await OAuthFlows.SignInAsync(http, user, Personas.Passwords[user], scope,
            AdminConsoleHost.ConsoleClient, AdminConsoleHost.ConsoleSecret, AdminConsoleHost.ConsoleRedirect);
        return tokens.GetProperty("access_token").GetString()!;
    }

    /// <summary>demo-secops's own token: its application user is a security admin of the whole organisation.</summary>
    public static Task<string> SecOpsTokenAsync(SecurityHost host) => Personas.ClientTokenAsync(host, "demo-secops", "identity.admin");

    /// <summary>The CRM app's own token for the decision API: it states where records are, as the CRM stores them.</summary>
    public static Task<string> CrmDecisionTokenAsync(SecurityHost host) => Personas.ClientTokenAsync(host, "demo-crm", "authz.decide");

    public static async Task<Reply> SendAsync(SecurityHost host, string? token, HttpMethod method, string path, object? body = null)
    {
        using var http = host.CreateClient(token);
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        }

        using var response = await http.SendAsync(request, Personas.Cancel);
        return new Reply(response.StatusCode, await response.Content.ReadAsStringAsync(Personas.Cancel), response.Headers.ETag?.Tag);
    }

    public static Task<Reply> PostAsync(SecurityHost host, string? token, string path, object? body = null) => SendAsync(host, token, HttpMethod.Post, path, body);

    public static Task<Reply> PutAsync(SecurityHost host, string? token, string path, object? body = null) => SendAsync(host, token, HttpMethod.Put, path, body);

    public static Task<Reply> GetAsync(SecurityHost host, string? token, string path) => SendAsync(host, token, HttpMethod.Get, path);

    /// <summary>A decision of <c>POST /authz/v1/check</c> asked with <paramref name="token"/> (the CRM app's own token by default).</summary>
    public static async Task<Reply> CheckAsync(SecurityHost host, string token, string userId, string entity, string action, object? record) =>
        await PostAsync(host, token, "authz/v1/check", record is null
            ? new { user_id = userId, entity, action }
            : new { user_id = userId, entity, action, record });

    /// <summary>An answer: status, body, ETag.</summary>
    public sealed record Reply(HttpStatusCode Status, string Text, string? ETag)
    {
        public JsonElement Json => JsonDocument.Parse(Text).RootElement.Clone();

        /// <summary>The messages of a validation problem for one field (RFC 9457 "errors" member), empty when it is not named.</summary>
        public IReadOnlyList<string> Errors(string field) =>
            Text.Length > 0 && Json.TryGetProperty("errors", out var errors) && errors.TryGetProperty(field, out var messages)
                ? [.. messages.EnumerateArray().Select(m => m.GetString()!)]
                : [];

        public string Detail => Json.TryGetProperty("detail", out var detail) ? detail.GetString() ?? "" : "";

        public bool Allowed => Json.GetProperty("allowed").GetBoolean();

        public string Basis => Json.GetProperty("basis").GetString()!;

        public override string ToString() => $"{(int)Status} {Text}";
    }
}
