using System.Net;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using static CrmSecurity.Security.Tests.Analyzer.AnalyzerCalls;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>
/// The demo host with a first-party review tool (<c>review-tool</c>) through which people sign in with the code flow and
/// get tokens for the analyzer's API (<c>findings:read</c>), as an auditors' console or a curious sales rep would.
/// </summary>
public class ReviewerHost : SecurityHost
{
    public const string Client = "review-tool";
    public const string Secret = "review-tool-secret-0123456789abcdef";
    public const string Redirect = "http://127.0.0.1:5099/callback";

    protected override IReadOnlyDictionary<string, string?> Settings => MoreSettings(new Dictionary<string, string?>
    {
        ["Identity:Clients:0:ClientId"] = Client,
        ["Identity:Clients:0:ClientSecret"] = Secret,
        ["Identity:Clients:0:GrantTypes:0"] = "authorization_code",
        ["Identity:Clients:0:Scopes:0"] = "openid",
        ["Identity:Clients:0:Scopes:1"] = "findings:read",
        ["Identity:Clients:0:RedirectUris:0"] = Redirect,
        ["Identity:Clients:0:FirstParty"] = "true",
        ["AuditAnalyzer:Export:SettleTime"] = "00:00:00.2",
    });

    /// <summary>Adds the settings of a more specific host (push destinations, ...).</summary>
    protected virtual Dictionary<string, string?> MoreSettings(Dictionary<string, string?> settings) => settings;

    private readonly Dictionary<string, string> _tokens = new(StringComparer.Ordinal);

    /// <summary><paramref name="user"/>'s token for the analyzer's API through the review tool (cached per user for the class).</summary>
    public async Task<string> ReviewTokenAsync(string user)
    {
        if (!_tokens.TryGetValue(user, out var token))
        {
            token = await TryUserTokenAsync(this, user, "openid findings:read", Client, Secret, Redirect)
                ?? throw new InvalidOperationException($"{user} got no findings:read token from {Client}.");
            _tokens[user] = token;
        }

        return token;
    }

    /// <summary>
    /// Posts a night-time export of 48,000 contacts by <paramref name="userId"/> as demo-crm and waits for its finding's
    /// id; <paramref name="utcHour"/> puts it in the user's night (03:00 UTC for the demo's Europeans).
    /// </summary>
    public async Task<string> FindingAboutAsync(string userId, string prefix, int utcHour = 3, int daysAgo = 1)
    {
        var writer = await Personas.ClientTokenAsync(this, "demo-crm", "events:write");
        var (status, body) = await PostEventsAsync(this, writer, NightExport(prefix, userId, ",\"tenant\":\"demo\"", utcHour, daysAgo));
        Assert.True(status == HttpStatusCode.OK, $"events refused: {(int)status} {body}");
        return await EventuallyAsync(async () =>
        {
            var rows = await QueryAsync(
                "SELECT f.id FROM analyzer_live_findings f JOIN analyzer_review_states r ON r.finding_id = f.id WHERE f.user_id = $u AND f.json LIKE $e",
                ("$u", userId), ("$e", $"%{prefix}-2%"));
            return rows.Count > 0 ? (string)rows[0]["id"]! : null;
        }, $"a finding about {userId}");
    }

    /// <summary>A browser session of <paramref name="user"/> signed in at the login form (the review pages' cookie).</summary>
    public async Task<HttpClient> BrowserAsync(string user)
    {
        var http = CreateClient(cookies: new CookieContainer());
        using var login = await OAuthFlows.SubmitLoginAsync(http, "/review", user, Personas.Passwords[user]);
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        return http;
    }

    /// <summary>The review state of a finding as stored.</summary>
    public async Task<string> StatusOfAsync(string findingId) =>
        (string)(await QueryAsync("SELECT status FROM analyzer_review_states WHERE finding_id = $f", ("$f", findingId)))[0]["status"]!;

    /// <summary>Audit-trail entries about a target, oldest first (action, actor name, after).</summary>
    public async Task<List<(string Action, string? Actor, string? After)>> AuditAsync(string targetId) =>
        [.. (await QueryAsync("SELECT Action, ActorName, \"After\" FROM identity_audit_trail WHERE TargetId = $t ORDER BY Sequence", ("$t", targetId)))
            .Select(r => ((string)r["Action"]!, r["ActorName"] as string, r["After"] as string))];
}
