using System.Net;
using CrmSecurity.Security.Tests.Support;
using static CrmSecurity.Security.Tests.Analyzer.AnalyzerCalls;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>The demo host plus a second CRM app, <c>east-crm</c>, bound to tenant demo and, in the analyzer, to Sales East's users.</summary>
public sealed class EventInjectionHost : SecurityHost
{
    public const string EastClient = "east-crm";
    public const string EastSecret = "east-crm-secret-0123456789abcdef";

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Clients:0:ClientId"] = EastClient,
        ["Identity:Clients:0:ClientSecret"] = EastSecret,
        ["Identity:Clients:0:GrantTypes:0"] = "client_credentials",
        ["Identity:Clients:0:Scopes:0"] = "events:write",
        ["Identity:Clients:0:Tenants:0"] = "demo",
        ["AuditAnalyzer:Live:Senders:east-crm:BusinessUnits:0"] = "sales-east",
    };
}

/// <summary>
/// Red-team finding 4: any end user could inject analyzer events about anyone. alice asked demo-crm's sign-in for
/// <c>events:write</c> and posted a night-time export in dave's name; a critical finding about dave appeared in ten
/// seconds. Ingestion now takes only a sending client's own token, binds it to its tenants (and, where configured, its
/// users), and stores the authenticated client as the sender.
/// </summary>
public sealed class EventInjectionTests(EventInjectionHost host) : IClassFixture<EventInjectionHost>
{
    [Fact]
    public async Task Alice_cannot_frame_dave_with_any_token_her_sign_in_gives_her()
    {
        var dave = await Personas.UserIdAsync(host, "dave");
        var framing = NightExport("frame-dave", dave, ",\"tenant\":\"demo\"");

        // The attack as it was: the sign-in flow asked for events:write. Whatever the provider answers, no token of hers sends events.
        var asked = await TryUserTokenAsync(host, "alice", "openid events:write");
        var ordinary = await Personas.UserTokenAsync(host, "alice");
        foreach (var token in new[] { asked, ordinary }.OfType<string>())
        {
            var (status, body) = await PostEventsAsync(host, token, framing);
            Assert.True(status is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized, $"alice's token was accepted: {(int)status} {body}");
        }

        // Identity's own events of dave's sign-ins are there (client "identity"); nothing alice sent is.
        Assert.Empty(await host.QueryAsync("SELECT seq FROM analyzer_live_events WHERE user_id = $u AND client_id <> 'identity'", ("$u", dave)));
        await Task.Delay(1000, Personas.Cancel); // a few scoring rounds
        Assert.Empty(await host.QueryAsync("SELECT id FROM analyzer_live_findings WHERE user_id = $u AND (detector = 'bulk_export' OR json LIKE '%frame-dave%')", ("$u", dave)));
    }

    [Fact]
    public async Task A_user_token_is_refused_with_a_reason_even_when_it_carries_the_scope()
    {
        // Whatever scope a user token ends up with (token exchange, a misconfigured client), it speaks for the user, not for a sending application.
        var token = await Personas.UserTokenAsync(host, "alice");
        var (status, body) = await PostEventsAsync(host, token, NightExport("user-token", "anyone"));

        Assert.True(status is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized, $"{(int)status} {body}");
    }

    [Fact]
    public async Task Demo_crm_cannot_report_events_for_another_tenant_and_keeps_its_good_lines()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-crm", "events:write");
        var noon = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(12);
        var lines = string.Join('\n',
            Line("tenant-own", "ed-crm-user", "read", noon, ",\"tenant\":\"demo\""),
            Line("tenant-other", "victim-at-another-bank", "export", noon, ",\"tenant\":\"bank-of-elsewhere\",\"entity\":\"contact\",\"record_count\":48000"),
            Line("tenant-implied", "ed-crm-user", "list", noon.AddMinutes(1)));

        var (status, body) = await PostEventsAsync(host, token, lines);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, body.GetProperty("stored").GetInt32());
        var error = Assert.Single(body.GetProperty("errors").EnumerateArray());
        Assert.Equal(2, error.GetProperty("line").GetInt32());
        Assert.Equal("tenant_not_allowed", error.GetProperty("reason").GetString());
        Assert.Contains("bank-of-elsewhere", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(await host.QueryAsync("SELECT seq FROM analyzer_live_events WHERE user_id = 'victim-at-another-bank'"));
    }

    [Fact]
    public async Task The_stored_sender_is_the_authenticated_client_not_the_client_the_line_names()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-crm", "events:write");
        var noon = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(12);

        var (status, body) = await PostEventsAsync(host, token, Line("sender-claim", "sender-user", "read", noon, ",\"tenant\":\"demo\",\"client_id\":\"identity\""));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, body.GetProperty("stored").GetInt32());
        var row = Assert.Single(await host.QueryAsync("SELECT client_id, event_key FROM analyzer_live_events WHERE user_id = 'sender-user'"));
        Assert.Equal("demo-crm", row["client_id"]);
        Assert.Equal("demo-crm:sender-claim", row["event_key"]);
    }

    [Fact]
    public async Task A_client_bound_to_sales_east_cannot_report_on_a_user_outside_it()
    {
        var token = await Personas.ClientTokenAsync(host, EventInjectionHost.EastClient, "events:write", EventInjectionHost.EastSecret);
        var (ed, dave) = (await Personas.UserIdAsync(host, "ed"), await Personas.UserIdAsync(host, "dave"));
        var noon = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(12);
        var lines = Line("east-ed", ed, "read", noon) + "\n" + Line("east-dave", dave, "export", noon, ",\"entity\":\"contact\",\"record_count\":48000");

        var (status, body) = await PostEventsAsync(host, token, lines);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, body.GetProperty("stored").GetInt32());
        var error = Assert.Single(body.GetProperty("errors").EnumerateArray());
        Assert.Equal(2, error.GetProperty("line").GetInt32());
        Assert.Equal("user_not_allowed", error.GetProperty("reason").GetString());
        Assert.Empty(await host.QueryAsync("SELECT seq FROM analyzer_live_events WHERE user_id = $u AND client_id = 'east-crm'", ("$u", dave)));
    }

    [Fact]
    public async Task A_token_of_a_client_without_the_scope_cannot_send_events()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-audit", "findings:read");

        var (status, _) = await PostEventsAsync(host, token, NightExport("audit-client", "anyone", ",\"tenant\":\"demo\""));

        Assert.Equal(HttpStatusCode.Forbidden, status);
    }
}
