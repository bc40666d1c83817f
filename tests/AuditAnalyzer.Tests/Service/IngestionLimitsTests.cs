using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Service.IngestionWrites;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// Ingestion's own bounded share of the host, through the real host: a sender beyond it is answered 429 with
/// Retry-After and loses nothing when it sends again, while health and decision requests keep being answered.
/// </summary>
public sealed class IngestionLimitsTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-ingest-limits-").FullName;
    private LiveHost _host = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        // One batch at a time and none waiting: a second batch while one is being read is refused at once.
        _host = LiveHost.Start(_directory, extra: new Dictionary<string, string?>
        {
            ["AuditAnalyzer:Live:MaxConcurrentBatches"] = "1",
            ["AuditAnalyzer:Live:MaxQueuedBatches"] = "0",
            ["AuditAnalyzer:Live:RetryAfter"] = "00:00:02",
        });
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
                await Task.Delay(200);
            }
        }
    }

    internal static string Lines(string prefix, string user, int count, int from = 0)
    {
        var at = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(12).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var lines = new StringBuilder();
        for (var i = from; i < from + count; i++)
        {
            lines.Append(CultureInfo.InvariantCulture,
                $"{{\"event_id\":\"{prefix}-{i}\",\"timestamp\":\"{at}\",\"user_id\":\"{user}\",\"action\":\"read\",\"entity\":\"contact\",\"record_id\":\"r-{i}\"}}\n");
        }

        return lines.ToString();
    }

    private async Task<int> StoredEventsAsync(string user)
    {
        await using var scope = _host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Events.CountAsync(e => e.UserId == user, Cancel);
    }

    private async Task<string> AliceAsync()
    {
        var admin = await _host.TokenAsync("demo-secops", "demo-secops-secret", "identity.admin");
        using var http = _host.CreateClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", admin);
        var users = JsonDocument.Parse(await http.GetStringAsync(new Uri("admin/api/users", UriKind.Relative), Cancel)).RootElement;
        return (users.ValueKind == JsonValueKind.Array ? users : users.GetProperty("items")).EnumerateArray()
            .Where(u => u.GetProperty("user_name").GetString() == "alice").Select(u => u.GetProperty("id").GetString()!).Single();
    }

    private static HttpRequestMessage Post(string path, string token, HttpContent content)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    [Fact]
    public async Task A_sender_beyond_the_limit_gets_429_with_Retry_After_and_loses_nothing_when_it_sends_again_while_health_and_decisions_still_answer()
    {
        var writer = await _host.WriterTokenAsync();
        var decider = await _host.TokenAsync("demo-crm", "demo-crm-secret", "authz.decide");
        var alice = await AliceAsync();
        var gate = _host.Services.GetRequiredService<IngestionGate>();

        // The first sender's batch (1,000 events) arrives slowly: half of it, then nothing until the test lets it go on.
        var slow = Encoding.UTF8.GetBytes(Lines("slow", "slow-user", 1000));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var first = _host.CreateClient();
        var firstSent = first.SendAsync(Post("analyzer/events", writer, new HeldContent(slow, slow.Length / 2, release.Task)), Cancel);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (gate.InUse < 1 && DateTime.UtcNow < deadline && !firstSent.IsCompleted)
        {
            await Task.Delay(20, Cancel);
        }

        Assert.Equal(1, gate.InUse);

        // A second sender while the one slot is taken: refused at once, told when to come back (RFC 6585 §4).
        var second = Lines("second", "second-user", 500);
        using var other = _host.CreateClient();
        using var refused = await other.SendAsync(Post("analyzer/events", writer, new StringContent(second, Encoding.UTF8, "application/x-ndjson")), Cancel);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter?.Delta);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal(0, await StoredEventsAsync("second-user"));

        // Ingestion is saturated; liveness and an authorization decision are still answered.
        using var health = await other.GetAsync(new Uri("health/live", UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using var check = await other.SendAsync(Post("authz/v1/check", decider, new StringContent(JsonSerializer.Serialize(new
        {
            user_id = alice,
            entity = "contact",
            action = "read",
            record = new { owner = alice, business_unit = "sales-west" },
        }), Encoding.UTF8, "application/json")), Cancel);
        Assert.Equal(HttpStatusCode.OK, check.StatusCode);
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(await check.Content.ReadAsStringAsync(Cancel)).RootElement.ValueKind);
        Assert.Equal(1, gate.InUse);

        // The first batch completes and is stored whole; the slot is free again.
        release.SetResult();
        using var firstDone = await firstSent;
        var firstBody = JsonDocument.Parse(await firstDone.Content.ReadAsStringAsync(Cancel)).RootElement;
        Assert.Equal(HttpStatusCode.OK, firstDone.StatusCode);
        Assert.Equal(1000, firstBody.GetProperty("stored").GetInt32());
        Assert.Equal(0, gate.InUse);

        // The refused sender sends the same batch again after Retry-After: all stored, and once more: nothing twice.
        await Task.Delay(refused.Headers.RetryAfter!.Delta!.Value, Cancel);
        var (retried, _, retriedBody) = await _host.PostEventsAsync(writer, second);
        var (again, _, againBody) = await _host.PostEventsAsync(writer, second);

        Assert.Equal(HttpStatusCode.OK, retried);
        Assert.Equal((500, 0), (retriedBody.GetProperty("stored").GetInt32(), retriedBody.GetProperty("duplicates").GetInt32()));
        Assert.Equal(HttpStatusCode.OK, again);
        Assert.Equal((0, 500), (againBody.GetProperty("stored").GetInt32(), againBody.GetProperty("duplicates").GetInt32()));
        Assert.Equal(500, await StoredEventsAsync("second-user"));
        Assert.Equal(1000, await StoredEventsAsync("slow-user"));
    }

    /// <summary>A body sent in two parts: the first at once, the rest once the release task completes.</summary>
    private sealed class HeldContent : HttpContent
    {
        private readonly byte[] _body;
        private readonly int _firstPart;
        private readonly Task _release;

        public HeldContent(byte[] body, int firstPart, Task release)
        {
            (_body, _firstPart, _release) = (body, firstPart, release);
            Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(_body.AsMemory(0, _firstPart));
            await stream.FlushAsync();
            await _release;
            await stream.WriteAsync(_body.AsMemory(_firstPart));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _body.Length;
            return true;
        }
    }
}
