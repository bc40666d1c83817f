using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>Live ingestion and background scoring through the real host, its Identity provider and a SQLite file.</summary>
public sealed class LiveIngestionTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-live-").FullName;
    private LiveHost _host = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        _host = LiveHost.Start(_directory);
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Directory.Delete(_directory, recursive: true);
                return;
            }
            catch (IOException) when (attempt < 10)
            {
                // Under heavy load the factory's dispose can return while the host's last database call (the
                // scorer giving its leases back) still runs and re-creates a file; give it a moment.
                await Task.Delay(200);
            }
        }
    }

    private static string At(DateTimeOffset time) => time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Line(string eventId, string user, string action, DateTimeOffset time, string extra = "") =>
        $"{{\"event_id\":\"{eventId}\",\"timestamp\":\"{At(time)}\",\"user_id\":\"{user}\",\"action\":\"{action}\"{extra}}}";

    private async Task<int> StoredEventsAsync(string user)
    {
        await using var scope = _host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Events.CountAsync(e => e.UserId == user, Cancel);
    }

    [Fact]
    public async Task A_bad_line_is_reported_by_its_line_number_and_the_good_lines_are_stored()
    {
        var token = await _host.WriterTokenAsync();
        var noon = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(12);
        var batch = string.Join('\n',
            Line("b1-1", "ann", "read", noon, ",\"entity\":\"contact\""),
            "{\"event_id\":\"b1-2\",\"timestamp\":",
            Line("b1-3", "ann", "teleport", noon),
            "",
            Line("b1-5", "ann", "search", noon.AddMinutes(1)),
            Line("b1-6", new string('u', 201), "read", noon));

        var (status, _, body) = await _host.PostEventsAsync(token, batch);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, body.GetProperty("stored").GetInt32());
        Assert.Equal(3, body.GetProperty("rejected").GetInt32());
        var errors = body.GetProperty("errors").EnumerateArray().Select(e => (e.GetProperty("line").GetInt64(), e.GetProperty("reason").GetString())).ToList();
        Assert.Equal([(2L, "broken_json"), (3L, "unknown_action"), (6L, "bad_value")], errors);
        Assert.Equal(2, await StoredEventsAsync("ann"));
    }

    [Fact]
    public async Task A_batch_sent_again_stores_nothing_twice_even_after_a_restart()
    {
        var token = await _host.WriterTokenAsync();
        var noon = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(12);
        // The second line has no event_id: it is keyed by a hash of its bytes.
        var batch = Line("r-1", "ben", "read", noon) + "\n" + $"{{\"timestamp\":\"{At(noon)}\",\"user_id\":\"ben\",\"action\":\"list\"}}\n";

        var first = await _host.PostEventsAsync(token, batch);
        var again = await _host.PostEventsAsync(token, batch);

        Assert.Equal((2, 0), (first.Body.GetProperty("stored").GetInt32(), first.Body.GetProperty("duplicates").GetInt32()));
        Assert.Equal((0, 2), (again.Body.GetProperty("stored").GetInt32(), again.Body.GetProperty("duplicates").GetInt32()));

        await _host.DisposeAsync();
        _host = LiveHost.Start(_directory);
        var afterRestart = await _host.PostEventsAsync(await _host.WriterTokenAsync(), batch);

        Assert.Equal(HttpStatusCode.OK, afterRestart.Status);
        Assert.Equal((0, 2), (afterRestart.Body.GetProperty("stored").GetInt32(), afterRestart.Body.GetProperty("duplicates").GetInt32()));
        Assert.Equal(2, await StoredEventsAsync("ben"));
    }

    [Fact]
    public async Task A_bulk_export_at_an_odd_hour_becomes_a_stored_finding_within_seconds()
    {
        var writer = await _host.WriterTokenAsync();
        var auditor = await _host.AuditorTokenAsync();
        var night = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(3);

        var (status, _, _) = await _host.PostEventsAsync(writer, string.Join('\n',
            Line("x-1", "carl", "login", night),
            Line("x-2", "carl", "export", night.AddMinutes(4), ",\"entity\":\"contact\",\"record_count\":48000")));
        Assert.Equal(HttpStatusCode.OK, status);

        // Readers see pseudonyms, not user ids (a user_id filter would test a guess without a reveal).
        var carl = await _host.PseudonymAsync("carl");
        JsonElement? found = null;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (found is null && DateTime.UtcNow < deadline)
        {
            var (listed, findings) = await _host.GetFindingsAsync(auditor, $"?user={carl}");
            Assert.Equal(HttpStatusCode.OK, listed);
            found = findings.EnumerateArray().Select(f => (JsonElement?)f).FirstOrDefault();
            if (found is null)
            {
                await Task.Delay(200, Cancel);
            }
        }

        Assert.True(found is not null, "no finding for the export within 20 seconds");
        var finding = found.Value;
        Assert.Equal(carl, finding.GetProperty("user").GetString());
        Assert.False(finding.TryGetProperty("user_id", out _));
        Assert.Equal("bulk_export", finding.GetProperty("detector").GetString());
        Assert.Contains(finding.GetProperty("severity").GetString(), new[] { "medium", "high", "critical" });
        Assert.Contains("x-2", finding.GetProperty("event_ids").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains(finding.GetProperty("reasons").EnumerateArray(), r => r.GetProperty("text").GetString()!.Contains("48,000", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_a_token_both_calls_are_refused_with_401()
    {
        var (posted, _, _) = await _host.PostEventsAsync(null, Line("n-1", "dan", "read", DateTimeOffset.UtcNow));
        var (listed, _) = await _host.GetFindingsAsync(null);

        Assert.Equal(HttpStatusCode.Unauthorized, posted);
        Assert.Equal(HttpStatusCode.Unauthorized, listed);
        Assert.Equal(0, await StoredEventsAsync("dan"));
    }

    [Fact]
    public async Task A_token_without_the_calls_scope_is_refused_and_one_for_another_api_is_not_accepted()
    {
        var auditor = await _host.AuditorTokenAsync(); // audience of the analyzer, but findings:read only
        var writer = await _host.WriterTokenAsync(); // events:write only
        var crmApi = await _host.TokenAsync("demo-crm", "demo-crm-secret", "crm.api"); // another audience

        Assert.Equal(HttpStatusCode.Forbidden, (await _host.PostEventsAsync(auditor, Line("s-1", "eve", "read", DateTimeOffset.UtcNow))).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await _host.GetFindingsAsync(writer)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _host.PostEventsAsync(crmApi, Line("s-2", "eve", "read", DateTimeOffset.UtcNow))).Status);
        Assert.Equal(0, await StoredEventsAsync("eve"));
    }

    [Fact]
    public async Task A_batch_over_the_size_limit_is_refused_with_413_problem_details_and_nothing_is_stored()
    {
        var token = await _host.WriterTokenAsync();
        var line = Line("big-0", "fay", "read", DateTimeOffset.UtcNow.AddHours(-1), ",\"details\":\"" + new string('x', 1000) + "\"");
        var batch = new StringBuilder();
        for (var i = 0; batch.Length <= 1024 * 1024; i++)
        {
            batch.Append(line.Replace("big-0", $"big-{i}", StringComparison.Ordinal)).Append('\n');
        }

        var (status, contentType, body) = await _host.PostEventsAsync(token, batch.ToString());

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("application/problem+json", contentType);
        Assert.Contains("1048576 bytes", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, await StoredEventsAsync("fay"));
    }
}
