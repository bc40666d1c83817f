using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Export;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

/// <summary>The ECS JSON Lines feed through the real host, its Identity provider and a SQLite file.</summary>
public sealed class ExportFeedTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-export-").FullName;
    private LiveHost _host = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        _host = LiveHost.Start(_directory, extra: new Dictionary<string, string?> { ["AuditAnalyzer:Export:SettleTime"] = "00:00:00" });
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A late database call of the stopped host may still hold a file; the temp folder is cleaned by the OS.
        }
    }

    internal static async Task<(HttpStatusCode Status, string? ContentType, string Body, string? Cursor)> PullAsync(LiveHost host, string? token, string query = "")
    {
        using var http = host.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "analyzer/export/findings" + query);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await http.SendAsync(request, Cancel);
        var cursor = response.Headers.TryGetValues(ExportEndpoints.CursorHeader, out var values) ? values.Single() : null;
        return (response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync(Cancel), cursor);
    }

    /// <summary>Pulls until a line for <paramref name="user"/> (a pseudonym: the feed names no one) appears (the scorer polls every 200 ms).</summary>
    internal static async Task<(List<JsonElement> Lines, string Cursor)> PullUntilAsync(LiveHost host, string token, string user, string query = "")
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var (status, _, body, cursor) = await PullAsync(host, token, query);
            Assert.Equal(HttpStatusCode.OK, status);
            var lines = body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            if (lines.Any(l => l.GetProperty("user").GetProperty("id").GetString() == user))
            {
                return (lines, cursor!);
            }

            Assert.True(DateTime.UtcNow < deadline, $"no exported finding for {user} within 30 seconds");
            await Task.Delay(200, Cancel);
        }
    }

    [Fact]
    public async Task A_new_finding_is_exported_once_as_ecs_json_lines_and_a_pull_with_the_cursor_returns_only_what_changed_after()
    {
        var auditor = await _host.AuditorTokenAsync();
        var writer = await _host.WriterTokenAsync();
        var empty = await PullAsync(_host, auditor);
        Assert.Equal((HttpStatusCode.OK, "", ""), (empty.Status, empty.Body, empty.Cursor));
        Assert.Equal(HttpStatusCode.OK, (await _host.PostEventsAsync(writer, ExportSamples.NightExport("carl", "c"))).Status);

        // The empty cursor of a pull that found nothing is a valid start.
        var carlUser = await _host.PseudonymAsync("carl");
        var (lines, cursor) = await PullUntilAsync(_host, auditor, carlUser, "?cursor=");

        var carl = Assert.Single(lines, l => l.GetProperty("user").GetProperty("id").GetString() == carlUser);
        Assert.False(carl.GetProperty("user").TryGetProperty("name", out _));
        Assert.Equal("alert", carl.GetProperty("event").GetProperty("kind").GetString());
        Assert.Equal("bulk_export", carl.GetProperty("rule").GetProperty("name").GetString());
        Assert.Contains("c-2", carl.GetProperty("crm_security").GetProperty("finding").GetProperty("event_ids").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("48,000", carl.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(cursor));

        // Nothing changed since: the same cursor comes back with no lines. Then a new finding: only it is returned.
        var again = await PullAsync(_host, auditor, "?cursor=" + cursor);
        Assert.Equal((HttpStatusCode.OK, "application/x-ndjson", "", cursor), (again.Status, again.ContentType, again.Body, again.Cursor));
        Assert.Equal(HttpStatusCode.OK, (await _host.PostEventsAsync(writer, ExportSamples.NightExport("dora", "d"))).Status);
        var (next, _) = await PullUntilAsync(_host, auditor, await _host.PseudonymAsync("dora"), "?cursor=" + cursor);
        // carl's finding may come again, but only as a later version (the scorer re-saves it when its window closes).
        var firstVersion = carl.GetProperty("event").GetProperty("created").GetDateTimeOffset();
        Assert.All(next.Where(l => l.GetProperty("user").GetProperty("id").GetString() == carlUser),
            l => Assert.True(l.GetProperty("event").GetProperty("created").GetDateTimeOffset() > firstVersion));
    }

    [Fact]
    public async Task An_open_finding_saved_again_unchanged_is_no_new_version_for_a_siem_pulling_with_its_cursor()
    {
        // A finding stays open for the correlation window (24 h) and is saved as it stands each time its partition
        // scores. When nothing in it changed, that save is no change: a SIEM holding the cursor must not get the finding
        // again, and the settle time must not hold it back for ever on a busy partition.
        var auditor = await _host.AuditorTokenAsync();
        var writer = await _host.WriterTokenAsync();
        var start = DateTimeOffset.UtcNow.AddHours(-2);
        Assert.Equal(HttpStatusCode.OK, (await _host.PostEventsAsync(writer, string.Join('\n',
            ExportSamples.Line("o-1", "ollie", "login", start),
            ExportSamples.Line("o-2", "ollie", "export", start.AddMinutes(4), ",\"entity\":\"contact\",\"record_count\":48000")))).Status);
        var ollie = await _host.PseudonymAsync("ollie");
        var (first, cursor) = await PullUntilAsync(_host, auditor, ollie);
        var version = Assert.Single(first, l => l.GetProperty("user").GetProperty("id").GetString() == ollie).GetProperty("event").GetProperty("created").GetString();

        // Another user of the same partition acts: the partition scores again and ollie's open finding is saved as it stands.
        var partitions = _host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<CrmSecurity.AuditAnalyzer.Service.LiveOptions>>().Value.Partitions;
        var neighbour = Enumerable.Range(0, 10_000).Select(i => $"neighbour-{i}")
            .First(u => CrmSecurity.AuditAnalyzer.Service.EventBatches.PartitionOf(u, partitions) == CrmSecurity.AuditAnalyzer.Service.EventBatches.PartitionOf("ollie", partitions));
        Assert.Equal(HttpStatusCode.OK, (await _host.PostEventsAsync(writer, ExportSamples.Line("n-1", neighbour, "read", start.AddMinutes(30), ",\"entity\":\"account\""))).Status);
        await ScoredAsync();

        var (_, _, body, _) = await PullAsync(_host, auditor, "?cursor=" + cursor);
        Assert.DoesNotContain(body.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => JsonDocument.Parse(l).RootElement.GetProperty("user").GetProperty("id").GetString() == ollie);
        var (_, _, all, _) = await PullAsync(_host, auditor);
        Assert.Contains(all.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement),
            l => l.GetProperty("user").GetProperty("id").GetString() == ollie && l.GetProperty("event").GetProperty("created").GetString() == version);
    }

    /// <summary>Waits until the scorer has scored every stored event (it polls every 200 ms).</summary>
    private async Task ScoredAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            await using var scope = _host.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<CrmSecurity.AuditAnalyzer.Service.LiveDbContext>();
            if (!await db.Events.AnyAsync(e => !e.Scored, Cancel))
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, "events still unscored after 30 seconds");
            await Task.Delay(100, Cancel);
        }
    }

    [Theory]
    [InlineData("?cursor=bm90LWEtY3Vyc29y", "cursor")]
    [InlineData("?limit=0", "limit")]
    [InlineData("?limit=abc", "limit")]
    [InlineData("?limit=5001", "limit")]
    public async Task Bad_query_input_gets_problem_details_naming_the_parameter(string query, string parameter)
    {
        var (status, contentType, body, _) = await PullAsync(_host, await _host.AuditorTokenAsync(), query);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("application/problem+json", contentType);
        Assert.True(JsonDocument.Parse(body).RootElement.GetProperty("errors").TryGetProperty(parameter, out _), body);
    }

    [Fact]
    public async Task The_export_needs_a_token_with_findings_read()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, (await PullAsync(_host, null)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await PullAsync(_host, await _host.WriterTokenAsync())).Status);
    }

    [Fact]
    public async Task The_export_tables_are_created_as_their_own_module()
    {
        await using var scope = _host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ExportDbContext>();

        var versions = await db.Database.SqlQueryRaw<int>("SELECT version AS \"Value\" FROM crm_schema_modules WHERE module = {0}", ExportModule.SchemaName).ToListAsync(Cancel);

        Assert.Equal([ExportDbContext.SchemaVersion], versions);
        Assert.Equal(0, await db.Cursors.CountAsync(Cancel));
    }
}
