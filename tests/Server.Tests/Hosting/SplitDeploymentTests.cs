using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Server.Tests.Hosting;

/// <summary>The host with Identity only: the analyzer's endpoints are not there.</summary>
public sealed class IdentityOnlyHost : InProcessHost
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Modules:AuditAnalyzer:Enabled"] = "false",
    };
}

/// <summary>The host with the analyzer only, trusting the tokens of the Identity deployment at <paramref name="authority"/>.</summary>
public sealed class AnalyzerOnlyHost(Uri authority) : InProcessHost
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Modules:Identity:Enabled"] = "false",
        ["Identity:Authority"] = authority.ToString(),
    };
}

public sealed class SplitDeploymentTests(IdentityOnlyHost identity) : IClassFixture<IdentityOnlyHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_identity_only_host_issues_tokens_and_has_no_analyzer_endpoints()
    {
        using var http = identity.CreateClient(await identity.TokenAsync("findings:read"));

        using var discovery = await http.GetAsync(new Uri(".well-known/openid-configuration", UriKind.Relative), Cancel);
        using var findings = await http.GetAsync(new Uri("analyzer/findings", UriKind.Relative), Cancel);

        Assert.Equal(HttpStatusCode.OK, discovery.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, findings.StatusCode);
    }

    [Fact]
    public async Task An_analyzer_only_host_accepts_the_identity_deployments_tokens_and_has_no_identity_endpoints()
    {
        await using var analyzer = new AnalyzerOnlyHost(identity.BaseAddress);
        await analyzer.InitializeAsync();
        using var writer = analyzer.CreateClient(await identity.TokenAsync("events:write"));
        using var reader = analyzer.CreateClient(await identity.TokenAsync("findings:read"));
        using var anonymous = analyzer.CreateClient();

        // 10:00 UTC yesterday by the analyzer host's clock: events older than its retention are refused.
        var at = new DateTimeOffset(analyzer.Services.GetRequiredService<TimeProvider>().GetUtcNow().UtcDateTime.Date.AddDays(-1).AddHours(10), TimeSpan.Zero)
            .ToString("O", CultureInfo.InvariantCulture);
        using var sent = await writer.PostAsync(new Uri("analyzer/events", UriKind.Relative),
            new StringContent($$"""{"event_id":"split-1","timestamp":"{{at}}","user_id":"u1","action":"read","entity":"contact"}""", Encoding.UTF8, "application/x-ndjson"), Cancel);
        using var findings = await reader.GetAsync(new Uri("analyzer/findings", UriKind.Relative), Cancel);
        using var unauthenticated = await anonymous.GetAsync(new Uri("analyzer/findings", UriKind.Relative), Cancel);
        using var wrongScope = await writer.GetAsync(new Uri("analyzer/findings", UriKind.Relative), Cancel);
        using var token = await anonymous.PostAsync(new Uri("connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }), Cancel);
        using var discovery = await anonymous.GetAsync(new Uri(".well-known/openid-configuration", UriKind.Relative), Cancel);
        using var admin = await anonymous.GetAsync(new Uri("admin/api/users", UriKind.Relative), Cancel);

        Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        Assert.Single(await analyzer.QueryAsync("SELECT seq FROM analyzer_live_events WHERE event_key = 'crm-app:split-1'"));
        // Reading findings goes through the authorization model, which lives with Identity: without it nobody reads (deny by default).
        Assert.Equal(HttpStatusCode.Forbidden, findings.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, unauthenticated.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, wrongScope.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, token.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, discovery.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, admin.StatusCode);
    }
}
