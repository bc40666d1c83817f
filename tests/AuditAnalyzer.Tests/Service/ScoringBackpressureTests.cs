using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// Backpressure from scoring through the real host: with <c>AuditAnalyzer:Live:MaxScoringLag</c> set, a batch sent while
/// the oldest unscored event has waited longer is refused with 503 and <c>Retry-After</c>, stores nothing, and is stored
/// when sent again after scoring caught up; without the setting nothing is refused for it, and the lag is measured either
/// way. The hosts score only when the test polls, so the backlog is the test's to make and to clear.
/// </summary>
public sealed class ScoringBackpressureTests : IAsyncDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("crm-backpressure-").FullName;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private LiveHost Start(string? maxLag)
    {
        var settings = new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Live:Scoring"] = "false",
            ["AuditAnalyzer:Live:RetryAfter"] = "00:00:02",
            ["AuditAnalyzer:IdentityEvents:Enabled"] = "false", // only the test's own events wait to be scored
        };
        if (maxLag is not null)
        {
            settings["AuditAnalyzer:Live:MaxScoringLag"] = maxLag;
        }

        return LiveHost.Start(_folder, null, settings);
    }

    private static string Batch(string user, int count)
    {
        var noon = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(12);
        return string.Join('\n', Enumerable.Range(0, count).Select(i =>
            $"{{\"event_id\":\"{user}-{i}\",\"timestamp\":\"{noon.AddMinutes(i).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\",\"user_id\":\"{user}\",\"action\":\"read\",\"entity\":\"contact\"}}"));
    }

    private static async Task<HttpResponseMessage> PostAsync(LiveHost host, string token, string lines)
    {
        using var http = host.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "analyzer/events") { Content = new StringContent(lines, Encoding.UTF8, "application/x-ndjson") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await http.SendAsync(request, Cancel);
    }

    private static async Task<int> StoredAsync(LiveHost host, string user)
    {
        await using var scope = host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Events.CountAsync(e => e.UserId == user, Cancel);
    }

    /// <summary>Waits until the host's own measurement says the oldest unscored event has waited more than <paramref name="over"/> (or, with null, that none waits).</summary>
    private static async Task<TimeSpan> LagAsync(LiveHost host, TimeSpan? over)
    {
        var lag = host.Services.GetRequiredService<ScoringLag>();
        for (var i = 0; i < 150; i++)
        {
            if (lag.Lag is { } now && (over is { } limit ? now > limit : now == TimeSpan.Zero))
            {
                return now;
            }

            await Task.Delay(100, Cancel);
        }

        Assert.Fail($"the measured scoring lag stayed at {lag.Lag?.ToString() ?? "unknown"}");
        return default;
    }

    [Fact]
    public async Task A_batch_sent_while_scoring_is_further_behind_than_the_limit_is_refused_with_retry_after_and_stored_once_it_caught_up()
    {
        await using var host = Start("00:00:01");
        var token = await host.WriterTokenAsync();
        using (var first = await PostAsync(host, token, Batch("ann", 20)))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        await LagAsync(host, TimeSpan.FromSeconds(1.5)); // nobody scores: the backlog ages

        using (var refused = await PostAsync(host, token, Batch("ben", 20)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter?.Delta);
            var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(Cancel)).RootElement;
            Assert.Contains("AuditAnalyzer:Live:MaxScoringLag", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(0, await StoredAsync(host, "ben"));

        // Scoring catches up; the sender sends the same batch again and it is stored.
        var scoring = host.Services.GetRequiredService<LiveScoring>();
        await scoring.PollAsync(Cancel);
        await LagAsync(host, null);
        using (var again = await PostAsync(host, token, Batch("ben", 20)))
        {
            Assert.True(again.StatusCode == HttpStatusCode.OK, $"{again.StatusCode} {await again.Content.ReadAsStringAsync(Cancel)}");
        }

        Assert.Equal(20, await StoredAsync(host, "ben"));
    }

    [Fact]
    public async Task Without_the_limit_a_backlog_is_measured_but_refuses_nothing()
    {
        await using var host = Start(null);
        var token = await host.WriterTokenAsync();
        using (var first = await PostAsync(host, token, Batch("ann", 20)))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        var lag = await LagAsync(host, TimeSpan.FromSeconds(1.5));

        using var second = await PostAsync(host, token, Batch("ben", 20));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.InRange(lag, TimeSpan.FromSeconds(1.5), TimeSpan.FromMinutes(1));
    }

    public ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A last write of a host's dispose; the temporary folder is left behind.
        }

        return ValueTask.CompletedTask;
    }
}
