using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Server.Demo;
using CrmSecurity.Server.Tests.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Server.Tests.Events;

public sealed class DemoHistoryTests(DemoHost host) : IClassFixture<DemoHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_fresh_demo_host_scores_the_planted_anomalies_into_findings()
    {
        // Read from the findings table: over HTTP findings are pseudonymous (docs/audit-analyzer.md, "Live ingestion and background scoring"), and which user a
        // finding is about is exactly what this test checks. The scorer polls every 200 ms here.
        List<JsonElement> findings = [];
        await host.WaitForRowsAsync("SELECT json FROM analyzer_live_findings", rows =>
        {
            findings = [.. rows.Select(r => JsonDocument.Parse((string)r["json"]!).RootElement.Clone())];
            return HasReason(findings, "alice", "bulk_export") && HasReason(findings, "wade", "privilege_misuse.self_grant");
        });

        Assert.True(HasReason(findings, "alice", "bulk_export"), "no bulk export finding for alice: " + string.Join('\n', findings));
        Assert.True(HasReason(findings, "wade", "privilege_misuse.self_grant"), "no self-grant finding for wade: " + string.Join('\n', findings));
        var alice = findings.First(f => f.GetProperty("user_name").GetString() == "alice" && Reasons(f).Any(r => r.StartsWith("bulk_export", StringComparison.Ordinal)));
        Assert.Contains(alice.GetProperty("severity").GetString(), new[] { "high", "critical" });
    }

    [Fact]
    public async Task The_history_is_stored_once_under_its_own_client_with_weeks_of_events()
    {
        var rows = await host.WaitForRowsAsync("SELECT count(*) AS n, count(DISTINCT user_id) AS users, min(timestamp_ticks) AS first, max(timestamp_ticks) AS last FROM analyzer_live_events WHERE client_id = 'demo-history'",
            r => (long)r[0]["n"]! > 0);

        var row = Assert.Single(rows);
        Assert.True((long)row["n"]! > 2000, $"only {row["n"]} events");
        Assert.Equal(9L, row["users"]);
        Assert.True(TimeSpan.FromTicks((long)row["last"]! - (long)row["first"]!).TotalDays > 20);
    }

    [Fact]
    public void The_history_is_the_same_for_the_same_day()
    {
        var now = new DateTimeOffset(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);

        var first = DemoHistory.Generate(now);
        var second = DemoHistory.Generate(now);

        Assert.Equal(first, second);
        var lines = Encoding.UTF8.GetString(first).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, line => Assert.True(JsonDocument.Parse(line).RootElement.GetProperty("timestamp").GetDateTimeOffset() < now));
        Assert.Contains(lines, line => line.Contains("\"export\"", StringComparison.Ordinal) && line.Contains("\"record_count\":12000", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_sales_rep_listing_her_contacts_as_the_sample_crm_reports_it_is_within_her_history_not_a_mass_decrypt()
    {
        const string unscored = "SELECT count(*) AS n FROM analyzer_live_events WHERE scored = 0 AND client_id <> 'identity'";
        await host.WaitForRowsAsync(unscored, rows => (long)rows[0]["n"]! == 0);

        // The sample CRM's contact list as it reports it: one decrypt event per row read, email and phone (the national ID
        // is hidden from sales, so it is not decrypted). 150 rows are 300 values: over the detector's floor of 200 for a
        // user with no decrypts in her history, the first thing a visitor of the demo does.
        var alice = IdentityDemo.People.Single(p => p.UserName == "alice");
        var at = DateTimeOffset.UtcNow.AddMinutes(-2).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var lines = Enumerable.Range(0, 150).Select(i =>
            $"{{\"event_id\":\"list-decrypt-{i}\",\"timestamp\":\"{at}\",\"user_id\":\"{alice.UserId}\",\"user_name\":\"alice\",\"action\":\"decrypt\",\"entity\":\"contact\",\"record_id\":\"contact-{i}\",\"fields\":[\"email\",\"phone\"],\"outcome\":\"success\",\"tenant\":\"demo\",\"client_id\":\"demo-crm\"}}");
        var result = await host.Services.GetRequiredService<ILiveEventWriter>().WriteAsync("sample-crm", Encoding.UTF8.GetBytes(string.Join('\n', lines)), Cancel);
        Assert.Equal(150, result.Stored);
        await host.WaitForRowsAsync(unscored, rows => (long)rows[0]["n"]! == 0);

        var findings = (await host.QueryAsync("SELECT json FROM analyzer_live_findings")).Select(r => JsonDocument.Parse((string)r["json"]!).RootElement.Clone()).ToList();
        Assert.False(HasReason(findings, "alice", "privilege_misuse.mass_decrypt"), "a mass-decrypt finding for alice's contact list: " + string.Join('\n', findings.Where(f => Reasons(f).Any(r => r.EndsWith("mass_decrypt", StringComparison.Ordinal)))));
    }

    private static IEnumerable<string> Reasons(JsonElement finding) =>
        finding.TryGetProperty("reasons", out var reasons) ? reasons.EnumerateArray().Select(r => r.GetProperty("code").GetString()!) : [];

    private static bool HasReason(List<JsonElement> findings, string userName, string codePrefix) =>
        findings.Any(f => f.TryGetProperty("user_name", out var name) && name.GetString() == userName
            && Reasons(f).Any(code => code.StartsWith(codePrefix, StringComparison.Ordinal)));
}
