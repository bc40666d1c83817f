using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using CrmSecurity.Security.Tests.Support;
using static CrmSecurity.Security.Tests.Analyzer.AnalyzerCalls;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>
/// The reviewer host with two webhook receivers on one loopback listener: <c>soc</c> as configured by default
/// (pseudonymous) and <c>hr-case</c> configured with <c>RealIdentities</c> (the explicit, audited way out for a SIEM
/// that must see real identities).
/// </summary>
public sealed class IdentityLeakHost : ReviewerHost, IAsyncLifetime
{
    private readonly HttpListener _listener = new();
    private readonly int _port = FreePort();

    /// <summary>Bodies received per path (<c>/soc</c>, <c>/hr-case</c>).</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<string>> Received { get; } = new(StringComparer.Ordinal);

    public override async ValueTask InitializeAsync()
    {
        _listener.Prefixes.Add($"http://127.0.0.1:{_port}/");
        _listener.Start();
        _ = Task.Run(ReceiveAsync);
        await base.InitializeAsync();
    }

    // SecurityHost.DisposeAsync is not virtual: re-implementing the interface stops the listener after the host.
    public new async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _listener.Close();
    }

    public const string UnplacedClient = "findings-probe";
    public const string UnplacedSecret = "findings-probe-secret-0123456789abcdef";

    protected override Dictionary<string, string?> MoreSettings(Dictionary<string, string?> settings)
    {
        settings["AuditAnalyzer:Export:PollInterval"] = "00:00:00.2";
        // A reading client that never gets an application user (demo-audit gets one in another test of the class, in any order).
        settings["Identity:Clients:1:ClientId"] = UnplacedClient;
        settings["Identity:Clients:1:ClientSecret"] = UnplacedSecret;
        settings["Identity:Clients:1:GrantTypes:0"] = "client_credentials";
        settings["Identity:Clients:1:Scopes:0"] = "findings:read";
        settings["AuditAnalyzer:Export:Webhooks:0:Name"] = "soc";
        settings["AuditAnalyzer:Export:Webhooks:0:Url"] = $"http://127.0.0.1:{_port}/soc";
        settings["AuditAnalyzer:Export:Webhooks:0:Secret"] = "soc-webhook-secret-0123456789abcdef0123";
        settings["AuditAnalyzer:Export:Webhooks:0:MinSeverity"] = "low";
        settings["AuditAnalyzer:Export:Webhooks:1:Name"] = "hr-case";
        settings["AuditAnalyzer:Export:Webhooks:1:Url"] = $"http://127.0.0.1:{_port}/hr-case";
        settings["AuditAnalyzer:Export:Webhooks:1:Secret"] = "hr-case-webhook-secret-0123456789abcdef";
        settings["AuditAnalyzer:Export:Webhooks:1:MinSeverity"] = "low";
        settings["AuditAnalyzer:Export:Webhooks:1:RealIdentities"] = "true";
        return settings;
    }

    private async Task ReceiveAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
            Received.GetOrAdd(context.Request.Url!.AbsolutePath, _ => new()).Enqueue(await reader.ReadToEndAsync());
            context.Response.StatusCode = 200;
            context.Response.Close();
        }
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}

/// <summary>
/// Red-team finding 6: identities leaked around the pseudonymised review. <c>GET /analyzer/findings</c> and the export
/// feed gave real user names to any <c>findings:read</c> token with no model check and no audit; a sales rep read who
/// was under investigation. Both now need read on <c>audit_finding</c> in the model, show pseudonyms, and release real
/// identities only to a caller who may reveal, asking for them with a reason, each release in the audit trail. A push
/// destination gets real identities only when configured with <c>RealIdentities</c>, each release audited.
/// </summary>
public sealed class IdentityLeakTests(IdentityLeakHost host) : IClassFixture<IdentityLeakHost>
{
    private static readonly string[] Readers = ["analyzer/findings", "analyzer/export/findings", "analyzer/export/destinations"];

    [Fact]
    public async Task A_sales_reps_token_with_findings_read_learns_nothing()
    {
        var frank = await Personas.UserIdAsync(host, "frank");
        await host.FindingAboutAsync(frank, "frank-rep");
        var alice = await host.ReviewTokenAsync("alice");

        foreach (var path in Readers)
        {
            var (status, body) = await GetAsync(host, alice, path);
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.DoesNotContain("frank", body.ToString(), StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(frank, body.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_client_with_findings_read_but_no_place_in_the_model_is_refused()
    {
        var token = await Personas.ClientTokenAsync(host, IdentityLeakHost.UnplacedClient, "findings:read", IdentityLeakHost.UnplacedSecret);

        foreach (var path in Readers)
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(host, token, path)).Status);
        }
    }

    [Fact]
    public async Task A_reader_in_the_model_sees_pseudonyms_in_the_list_and_the_export_feed()
    {
        var frank = await Personas.UserIdAsync(host, "frank");
        var id = await host.FindingAboutAsync(frank, "frank-read");
        var dave = await host.ReviewTokenAsync("dave"); // security admin: read on audit_finding, no review right

        var (listed, list) = await GetAsync(host, dave, "analyzer/findings?limit=1000");
        var feed = await FeedAsync(dave, "");

        Assert.Equal(HttpStatusCode.OK, listed);
        var finding = list.EnumerateArray().Single(f => f.GetProperty("id").GetString() == id);
        Assert.StartsWith("user-", finding.GetProperty("user").GetString(), StringComparison.Ordinal);
        Assert.False(finding.TryGetProperty("user_id", out _));
        Assert.False(finding.TryGetProperty("user_name", out _));
        var document = feed.Single(d => d.GetProperty("event").GetProperty("id").GetString() == id);
        Assert.Equal(finding.GetProperty("user").GetString(), document.GetProperty("user").GetProperty("id").GetString());
        Assert.False(document.GetProperty("user").TryGetProperty("name", out _));
        foreach (var text in new[] { list.ToString(), string.Join('\n', feed) })
        {
            Assert.DoesNotContain(frank, text, StringComparison.Ordinal);
            Assert.DoesNotContain("frank", text, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task A_siem_client_given_an_application_user_with_read_on_findings_gets_the_pseudonymous_feed()
    {
        await GiveClientReadOnFindingsAsync(host, "demo-audit");

        var frank = await Personas.UserIdAsync(host, "frank");
        var id = await host.FindingAboutAsync(frank, "frank-siem");
        var siem = await Personas.ClientTokenAsync(host, "demo-audit", "findings:read");
        var feed = await FeedAsync(siem, "");
        var (identified, _) = await GetAsync(host, siem, "analyzer/export/findings?identities=true", revealReason: "siem");

        Assert.Contains(feed, d => d.GetProperty("event").GetProperty("id").GetString() == id);
        Assert.DoesNotContain("frank", string.Join('\n', feed), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(HttpStatusCode.Forbidden, identified);
    }

    [Fact]
    public async Task A_user_id_filter_cannot_test_a_guess_without_an_audited_release()
    {
        var dave = await host.ReviewTokenAsync("dave");
        var frank = await Personas.UserIdAsync(host, "frank");

        var (filtered, body) = await GetAsync(host, dave, $"analyzer/findings?user_id={frank}");
        var (asked, _) = await GetAsync(host, dave, $"analyzer/findings?user_id={frank}&identities=true", revealReason: "guess");

        Assert.Equal(HttpStatusCode.BadRequest, filtered);
        Assert.True(body.GetProperty("errors").TryGetProperty("user_id", out _), body.ToString());
        Assert.Equal(HttpStatusCode.Forbidden, asked);
    }

    [Fact]
    public async Task An_auditor_gets_identities_only_asking_with_a_reason_and_each_release_is_audited()
    {
        var frank = await Personas.UserIdAsync(host, "frank");
        var id = await host.FindingAboutAsync(frank, "frank-release");
        var carol = await host.ReviewTokenAsync("carol");

        var (withoutReason, problem) = await GetAsync(host, carol, "analyzer/findings?identities=true");
        var (released, list) = await GetAsync(host, carol, "analyzer/findings?identities=true&limit=1000", revealReason: "case SEC-77 (Zoë)");
        var feed = await FeedAsync(carol, "?identities=true", revealReason: "case SEC-78");

        Assert.Equal(HttpStatusCode.BadRequest, withoutReason);
        Assert.True(problem.GetProperty("errors").TryGetProperty("reason", out _), problem.ToString());
        Assert.Equal(HttpStatusCode.OK, released);
        Assert.Equal(frank, list.EnumerateArray().Single(f => f.GetProperty("id").GetString() == id).GetProperty("user_id").GetString());
        Assert.Equal(frank, feed.Single(d => d.GetProperty("event").GetProperty("id").GetString() == id).GetProperty("user").GetProperty("id").GetString());
        var audit = (await host.AuditAsync(id)).Where(e => e.Action == "finding.reveal.bulk").ToList();
        Assert.Contains(audit, e => JsonDocument.Parse(e.After!).RootElement.GetProperty("reason").GetString() == "case SEC-77 (Zoë)"
            && e.After!.Contains("GET /analyzer/findings", StringComparison.Ordinal));
        Assert.Contains(audit, e => e.After!.Contains("SEC-78", StringComparison.Ordinal));
        Assert.All(audit, e => Assert.DoesNotContain(frank, e.After!, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_reveal_reason_in_the_url_is_refused_because_urls_are_logged_and_nothing_is_released()
    {
        // OWASP ASVS 4.0.3 V8.3.1: no sensitive data in the query string. A reason names the case and often the person
        // investigated; URLs land in proxy, load-balancer and browser logs that the audit trail does not protect.
        var frank = await Personas.UserIdAsync(host, "frank");
        var id = await host.FindingAboutAsync(frank, "frank-url-reason");
        var carol = await host.ReviewTokenAsync("carol");
        var releasesBefore = await ReleasesAsync();

        var (list, listProblem) = await GetAsync(host, carol, "analyzer/findings?identities=true&reason=investigating%20frank");
        using var http = host.CreateClient(carol);
        using var feed = await http.GetAsync(new Uri("analyzer/export/findings?identities=true&reason=investigating%20frank", UriKind.Relative), Personas.Cancel);

        Assert.Equal(HttpStatusCode.BadRequest, list);
        Assert.Contains("Reveal-Reason", listProblem.GetProperty("errors").GetProperty("reason")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, feed.StatusCode);
        Assert.Equal(releasesBefore, await ReleasesAsync());
        Assert.NotNull(id);
    }

    private async Task<long> ReleasesAsync() =>
        (long)(await host.QueryAsync("SELECT COUNT(*) AS n FROM identity_audit_trail WHERE Action = 'finding.reveal.bulk'"))[0]["n"]!;

    [Fact]
    public async Task Webhooks_get_pseudonyms_unless_configured_for_real_identities_and_those_releases_are_audited()
    {
        var frank = await Personas.UserIdAsync(host, "frank");
        var id = await host.FindingAboutAsync(frank, "frank-push");

        var soc = await EventuallyAsync(() => Task.FromResult(Delivered("/soc", id)), "the soc webhook call");
        var hr = await EventuallyAsync(() => Task.FromResult(Delivered("/hr-case", id)), "the hr-case webhook call");

        Assert.StartsWith("user-", soc, StringComparison.Ordinal);
        Assert.Equal(frank, hr);
        Assert.DoesNotContain("frank", string.Join('\n', host.Received.GetValueOrDefault("/soc") ?? []), StringComparison.OrdinalIgnoreCase);
        var audit = await host.AuditAsync(id);
        Assert.Contains(audit, e => e.Action == "finding.reveal.bulk" && e.Actor == "findings export to webhook:hr-case");
        Assert.DoesNotContain(audit, e => (e.After ?? "").Contains("webhook:soc", StringComparison.Ordinal));
    }

    private string? Delivered(string path, string findingId) =>
        (host.Received.GetValueOrDefault(path) ?? []).Select(b => JsonDocument.Parse(b).RootElement.GetProperty("data"))
            .Where(d => d.GetProperty("event").GetProperty("id").GetString() == findingId)
            .Select(d => d.GetProperty("user").GetProperty("id").GetString()).LastOrDefault();

    private async Task<List<JsonElement>> FeedAsync(string token, string query, string? revealReason = null)
    {
        await Task.Delay(500, Personas.Cancel); // changes younger than the settle time (0.2 s here) are held back
        using var http = host.CreateClient(token);
        if (revealReason is not null)
        {
            http.DefaultRequestHeaders.Add("Reveal-Reason", Uri.EscapeDataString(revealReason));
        }

        using var response = await http.GetAsync(new Uri("analyzer/export/findings" + query, UriKind.Relative), Personas.Cancel);
        var text = await response.Content.ReadAsStringAsync(Personas.Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {text}");
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }
}
