using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Security.Tests.Support;
using static CrmSecurity.Security.Tests.Analyzer.AnalyzerCalls;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>
/// Risk that changes access (policies/risk-access.json), end to end through the real host: a user's night-time bulk
/// export becomes a finding, the next decisions about that user refuse exports and mask secured fields, naming the
/// finding, and an auditor's dismissal gives the access back; both changes are in the audit trail.
/// </summary>
public sealed class RiskAccessTests(ReviewerHost host) : IClassFixture<ReviewerHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private async Task<JsonElement> CheckAsync(string userId, string action)
    {
        using var decide = host.CreateClient(await Personas.ClientTokenAsync(host, "demo-crm", "authz.decide"));
        using var response = await decide.PostAsJsonAsync("authz/v1/check", new { user_id = userId, entity = "contact", action }, Cancel);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
    }

    private async Task<string> FieldAsync(string userId, string field)
    {
        using var decide = host.CreateClient(await Personas.ClientTokenAsync(host, "demo-crm", "authz.decide"));
        var body = await decide.GetFromJsonAsync<JsonElement>($"authz/v1/users/{userId}/fields/contact?fields={field}", Cancel);
        return body.GetProperty("fields").GetProperty(field).GetProperty("access").GetString()!;
    }

    [Fact]
    public async Task Bobs_bulk_export_at_3am_denies_his_next_export_within_seconds_and_a_dismissal_restores_it()
    {
        var bob = await Personas.UserIdAsync(host, "bob");
        Assert.True((await CheckAsync(bob, "export")).GetProperty("allowed").GetBoolean(), "the model lets a sales manager export contacts");
        var secured = await FieldAsync(bob, "email");

        // 03:00 in Los Angeles, where bob works: 48,000 contacts.
        var finding = await host.FindingAboutAsync(bob, "bob-risk", utcHour: 11);
        var severity = (string)(await host.QueryAsync("SELECT severity FROM analyzer_live_findings WHERE id = $f", ("$f", finding)))[0]["severity"]!;
        Assert.Contains(severity, new[] { "high", "critical" });

        var deniedText = await EventuallyAsync(async () =>
        {
            var check = await CheckAsync(bob, "export");
            return check.GetProperty("allowed").GetBoolean() ? null : check.GetRawText();
        }, "the export check to be denied");
        var denied = JsonDocument.Parse(deniedText).RootElement;
        Assert.Equal("risk", denied.GetProperty("basis").GetString());
        var reason = denied.GetProperty("reason").GetString()!;
        Assert.Contains($"export denied: open {severity} finding {finding}", reason, StringComparison.Ordinal);
        Assert.Contains("bulk_export", reason, StringComparison.Ordinal);

        // No side door: an AuthZEN PEP asking the same question gets the same refusal.
        using (var pep = host.CreateClient(await Personas.ClientTokenAsync(host, "demo-crm", "authz.decide")))
        {
            using var evaluation = await pep.PostAsJsonAsync("access/v1/evaluation",
                new { subject = new { type = "user", id = bob }, resource = new { type = "contact" }, action = new { name = "export" } }, Cancel);
            var authzen = await evaluation.Content.ReadFromJsonAsync<JsonElement>(Cancel);
            Assert.True(evaluation.StatusCode == HttpStatusCode.OK, authzen.ToString());
            Assert.False(authzen.GetProperty("decision").GetBoolean());
            Assert.Contains(finding, authzen.GetProperty("context").GetProperty("reason_admin").GetProperty("en").GetString(), StringComparison.Ordinal);
        }

        // Reading stays allowed (a critical finding obliges a step-up first); a secured field reads masked.
        var read = await CheckAsync(bob, "read");
        Assert.True(read.GetProperty("allowed").GetBoolean());
        Assert.Equal(severity == "critical", read.TryGetProperty("obligations", out var obligations)
            && obligations[0].GetProperty("type").GetString() == "step_up" && obligations[0].GetProperty("value").GetString() == "mfa");
        if (secured is "read" or "update")
        {
            Assert.Equal("masked", await FieldAsync(bob, "email"));
        }

        // carol, an auditor, dismisses it: the next checks are the model's again.
        var carol = await host.ReviewTokenAsync("carol");
        var (status, body) = await PostJsonAsync(host, carol, $"analyzer/review/findings/{finding}/status",
            new { status = "dismissed", disposition = "benign_true_positive", note = "quarterly customer list for the auditors, approved" });
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        await EventuallyAsync(async () => (await CheckAsync(bob, "export")).GetProperty("allowed").GetBoolean() ? "allowed" : null, "the export check to be allowed again");
        Assert.Equal(secured, await FieldAsync(bob, "email"));

        var audit = await host.AuditAsync(bob);
        var inEffect = Assert.Single(audit, a => a.Action == "risk.in_effect");
        Assert.Contains(finding, inEffect.After, StringComparison.Ordinal);
        Assert.Single(audit, a => a.Action == "risk.lifted");
    }
}
