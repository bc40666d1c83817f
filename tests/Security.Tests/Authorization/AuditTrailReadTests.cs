using System.Net;
using System.Text.Json;
using CrmSecurity.Security.Tests.Support;
using static CrmSecurity.Security.Tests.Authorization.AdminConsole;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// Who may read the audit trail through <c>/admin/api/audit</c>: only holders of <c>read</c> on <c>audit_trail</c> at
/// organization depth, and only holders of <c>export</c> too may export it. An end user and a business-unit admin are
/// refused with their own tokens over real HTTP, and every read, allowed or refused, leaves an access event of the reader.
/// </summary>
public sealed class AuditTrailReadTests(AdminConsoleHost host) : IClassFixture<AdminConsoleHost>
{
    private static readonly string[] Routes = ["admin/api/audit", "admin/api/audit/export", "admin/api/audit/verify"];

    [Fact]
    public async Task An_end_user_with_an_admin_scoped_token_cannot_read_export_or_verify_the_trail()
    {
        var alice = await AdminTokenAsync(host, "alice");

        foreach (var route in Routes)
        {
            var reply = await GetAsync(host, alice, route);
            Assert.True(reply.Status == HttpStatusCode.Forbidden, $"{route}: {reply}");
            Assert.DoesNotContain("\"entries\"", reply.Text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_business_unit_admin_cannot_read_the_organisation_wide_trail_and_each_refusal_is_an_access_event()
    {
        var wade = await AdminTokenAsync(host, "wade");

        foreach (var route in Routes)
        {
            var reply = await GetAsync(host, wade, route);
            Assert.True(reply.Status == HttpStatusCode.Forbidden, $"{route}: {reply}");
            Assert.Contains("audit_trail", reply.Detail, StringComparison.Ordinal);
        }

        var refusals = await EventsAsync("SELECT Details FROM identity_access_events WHERE Action = 'admin_change' AND Outcome = 'denied' AND UserId = @u AND Details LIKE '%/admin/api/audit%'",
            DemoIds.Of("wade"), rows => rows.Count >= Routes.Length);
        Assert.Equal(Routes.Length, refusals.Count);
    }

    [Fact]
    public async Task A_security_admin_reads_the_trail_but_may_not_bulk_export_it()
    {
        var dave = await AdminTokenAsync(host, "dave");

        var list = await GetAsync(host, dave, "admin/api/audit");
        var export = await GetAsync(host, dave, "admin/api/audit/export");

        Assert.Equal(HttpStatusCode.OK, list.Status);
        Assert.Equal(HttpStatusCode.Forbidden, export.Status);
        Assert.Contains("export on audit_trail", export.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_auditors_export_is_json_lines_equal_to_the_filtered_list_and_both_reads_are_her_access_events()
    {
        var dave = await AdminTokenAsync(host, "dave");
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync(host, dave, "admin/api/roles/marketing/privileges/invoice/read", new { depth = "business_unit" })).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync(host, dave, "admin/api/roles/marketing/privileges/lead/delete", new { depth = "business_unit" })).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync(host, dave, "admin/api/roles/finance/privileges/lead/read", new { depth = "business_unit" })).Status);
        var carol = await AdminTokenAsync(host, "carol");
        const string filter = "action=role.privilege&actor=dave";

        var listed = new List<JsonElement>();
        for (long? after = 0; after is { } cursor;)
        {
            var page = await GetAsync(host, carol, $"admin/api/audit?{filter}&limit=1&after={cursor}");
            Assert.True(page.Status == HttpStatusCode.OK, page.ToString());
            listed.AddRange(page.Json.GetProperty("entries").EnumerateArray());
            after = page.Json.GetProperty("next_after") is { ValueKind: JsonValueKind.Number } next ? next.GetInt64() : null;
        }

        using var http = host.CreateClient(carol);
        using var response = await http.GetAsync(new Uri($"admin/api/audit/export?{filter}", UriKind.Relative), Personas.Cancel);
        var text = await response.Content.ReadAsStringAsync(Personas.Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/jsonl", response.Content.Headers.ContentType?.MediaType);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        var lines = text.TrimEnd('\n').Split('\n').Select(line => JsonDocument.Parse(line).RootElement.Clone()).ToList();
        Assert.True(listed.Count >= 3, $"{listed.Count} entries listed");
        Assert.Equal(listed.Count, lines.Count);
        Assert.All(listed.Zip(lines), pair => Assert.True(JsonElement.DeepEquals(pair.First, pair.Second), $"{pair.First} != {pair.Second}"));

        var reads = await EventsAsync("SELECT Action, Details FROM identity_access_events WHERE UserId = @u AND Privilege LIKE 'audit_trail:%'",
            DemoIds.Of("carol"), rows => rows.Exists(r => (string)r["Action"]! == "export"));
        Assert.Contains(reads, r => (string)r["Action"]! == "read" && ((string)r["Details"]!).StartsWith("actor=dave&action=role.privilege", StringComparison.Ordinal));
        Assert.Contains(reads, r => (string)r["Action"]! == "export" && (string)r["Details"]! == "actor=dave&action=role.privilege");
    }

    /// <summary>Access events are written in batches off the request path: wait until the expected ones are there.</summary>
    private async Task<List<Dictionary<string, object?>>> EventsAsync(string sql, string userId, Predicate<List<Dictionary<string, object?>>> done)
    {
        List<Dictionary<string, object?>> rows = [];
        for (var attempt = 0; attempt < 100 && !done(rows); attempt++)
        {
            await Task.Delay(100, Personas.Cancel);
            rows = await host.QueryAsync(sql, ("@u", userId));
        }

        return rows;
    }
}
