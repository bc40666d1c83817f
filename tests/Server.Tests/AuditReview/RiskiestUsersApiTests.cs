using System.Net;
using System.Text.Json;

namespace CrmSecurity.Server.Tests.AuditReview;

/// <summary>The riskiest-users roll-up of the review API (<c>GET /analyzer/review/users</c>) through the real host.</summary>
public sealed class RiskiestUsersApiTests : IAsyncLifetime
{
    private ReviewHost _host = null!;

    public ValueTask InitializeAsync()
    {
        _host = ReviewHost.Start();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public async Task An_auditor_gets_users_ranked_by_pseudonym_and_a_user_without_the_read_right_gets_nothing()
    {
        var writer = await _host.WriterTokenAsync();
        var carol = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        await _host.PostNightExportAsync(writer, "carl", 1, 48_000, "r1");
        await _host.PostNightExportAsync(writer, "carl", 2, 52_000, "r2");
        await _host.PostNightExportAsync(writer, "cleo", 1, 30_000, "r3");
        await _host.WaitForQueueItemAsync(carol, "", _ => true);

        JsonElement body = default;
        for (var deadline = DateTime.UtcNow.AddSeconds(20); ; await Task.Delay(200, ReviewHost.Cancel))
        {
            var (status, reply) = await _host.GetAsync(carol, "analyzer/review/users?sort=open");
            Assert.Equal(HttpStatusCode.OK, status);
            body = reply;
            if (body.GetProperty("total").GetInt32() == 2)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the roll-up did not show both users within 20 seconds: {body}");
        }

        var top = body.GetProperty("items")[0];
        var next = body.GetProperty("items")[1];
        Assert.Matches("^user-[0-9a-f]{8}$", top.GetProperty("user").GetString());
        Assert.NotEqual(top.GetProperty("user").GetString(), next.GetProperty("user").GetString());
        Assert.True(top.GetProperty("open_findings").GetInt32() >= next.GetProperty("open_findings").GetInt32());
        Assert.True(top.GetProperty("score_sum").GetDouble() > 0);
        Assert.NotNull(top.GetProperty("highest_open_severity").GetString());
        var (found, latest) = await _host.GetAsync(carol, $"analyzer/review/findings/{top.GetProperty("latest_finding_id").GetString()}");
        Assert.Equal(HttpStatusCode.OK, found);
        Assert.Equal(top.GetProperty("user").GetString(), latest.GetProperty("user").GetString());

        var (_, byScore) = await _host.GetAsync(carol, "analyzer/review/users?sort=score");
        var scores = byScore.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("score_sum").GetDouble()).ToList();
        Assert.Equal(scores.OrderDescending(), scores);
        Assert.DoesNotContain("carl", body.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("cleo", body.ToString(), StringComparison.Ordinal);

        var (paged, second) = await _host.GetAsync(carol, "analyzer/review/users?sort=open&page=2&page_size=1");
        Assert.Equal(HttpStatusCode.OK, paged);
        Assert.Equal(body.GetProperty("items")[1].GetProperty("user").GetString(), Assert.Single(second.GetProperty("items").EnumerateArray()).GetProperty("user").GetString());

        var (bad, problem) = await _host.GetAsync(carol, "analyzer/review/users?sort=user_id");
        Assert.Equal(HttpStatusCode.BadRequest, bad);
        Assert.True(problem.GetProperty("errors").TryGetProperty("sort", out _), problem.ToString());

        // A sales rep is no reader of findings: the roll-up is refused like the queue (deny by default).
        var alice = await _host.UserTokenAsync("alice", "Alice-Sells-Widgets-42");
        var (refused, refusal) = await _host.GetAsync(alice, "analyzer/review/users");
        var (queueRefused, _) = await _host.GetAsync(alice, "analyzer/review/findings");
        Assert.Equal(HttpStatusCode.Forbidden, queueRefused);
        Assert.Equal(HttpStatusCode.Forbidden, refused);
        Assert.DoesNotContain("user-", refusal.ToString(), StringComparison.Ordinal);
    }
}
